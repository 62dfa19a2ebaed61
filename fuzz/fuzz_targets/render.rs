//! Fuzz target `render`: see `dynamo_connector::fuzzing::check_render`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dynamo_connector::fuzzing::check_render(data);
});
