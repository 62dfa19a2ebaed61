//! Fuzz target `request`: see `dynamo_connector::fuzzing::check_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dynamo_connector::fuzzing::check_request(data);
});
