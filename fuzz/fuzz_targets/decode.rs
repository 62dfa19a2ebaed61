//! Fuzz target `decode`: see `dynamo_connector::fuzzing::check_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dynamo_connector::fuzzing::check_decode(data);
});
