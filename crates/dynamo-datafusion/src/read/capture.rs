//! Scan and Query answers without the SDK's item parse.
//!
//! The SDK turns every item of an answer into a `HashMap<String,
//! AttributeValue>`, one allocation per attribute name and value; on wide
//! scans that costs more than everything else the client does. An
//! [`ItemsCapture`] attached to a request takes the `Items` array out of the
//! answer's body before the SDK reads it and keeps its JSON text, which
//! [`crate::ItemDecoder::decode_json`] turns into Arrow directly. The SDK
//! still parses the rest of the answer (`LastEvaluatedKey`, counts, consumed
//! capacity) and sees `"Items":[]`.
//!
//! Only a successful answer that is a well-formed JSON object is touched;
//! anything else (errors, garbage, a body cut short) reaches the SDK unchanged,
//! so failures are classified and retried exactly as before.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use aws_sdk_dynamodb::client::customize::CustomizableOperation;
use aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_types::body::SdkBody;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};

use crate::decode::items_span;

/// The JSON text of an answer's `Items` array.
#[derive(Debug, Clone)]
pub(crate) struct ItemsJson(String);

impl ItemsJson {
    /// The array as text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Per-request interceptor that takes the `Items` array out of the answer.
/// Clones share the captured text; each attempt starts empty.
#[derive(Debug, Clone, Default)]
pub(crate) struct ItemsCapture {
    slot: Arc<Mutex<Option<ItemsJson>>>,
}

impl ItemsCapture {
    /// `operation` with `capture` attached, if any.
    pub(crate) fn attach<T, E, B>(
        capture: &Option<Self>,
        operation: CustomizableOperation<T, E, B>,
    ) -> CustomizableOperation<T, E, B> {
        match capture {
            Some(c) => operation.interceptor(c.clone()),
            None => operation,
        }
    }

    /// The items of the last answer, if they were captured (the SDK's `items`
    /// are then empty); `None` when the SDK parsed them itself.
    pub(crate) fn take(&self) -> Option<ItemsJson> {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Intercept for ItemsCapture {
    fn name(&self) -> &'static str {
        "ItemsCapture"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let response = context.response_mut();
        if !response.status().is_success() {
            return Ok(());
        }
        let inner = std::mem::replace(response.body_mut(), SdkBody::taken());
        *response.body_mut() = SdkBody::from_body_1_x(SplitItems {
            inner: Box::pin(inner),
            buffer: BytesMut::new(),
            slot: Arc::clone(&self.slot),
            done: false,
        });
        Ok(())
    }
}

/// A response body that reads the whole answer, keeps its `Items` text and
/// yields the answer with `"Items":[]`.
struct SplitItems {
    inner: Pin<Box<SdkBody>>,
    buffer: BytesMut,
    slot: Arc<Mutex<Option<ItemsJson>>>,
    done: bool,
}

impl Body for SplitItems {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    this.done = true;
                    let whole = std::mem::take(&mut this.buffer).freeze();
                    let (rest, items) = split(whole);
                    if let Some(items) = items {
                        *this.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(items);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
            }
        }
    }
}

/// The answer with its `Items` emptied, and their text; the answer unchanged
/// when it is not UTF-8 JSON with an `Items` array.
fn split(whole: Bytes) -> (Bytes, Option<ItemsJson>) {
    let Some((text, span)) = std::str::from_utf8(&whole)
        .ok()
        .and_then(|text| Some((text, items_span(text)?)))
    else {
        return (whole, None);
    };
    let items = ItemsJson(text[span.clone()].to_string());
    let mut rest = BytesMut::with_capacity(whole.len() - span.len() + 2);
    rest.extend_from_slice(&whole[..span.start]);
    rest.extend_from_slice(b"[]");
    rest.extend_from_slice(&whole[span.end..]);
    (rest.freeze(), Some(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_items_out_of_an_answer() {
        let body = r#"{"Count":1,"Items":[{"pk":{"S":"é"}}],"ScannedCount":1}"#;
        let (rest, items) = split(Bytes::from(body));
        assert_eq!(&rest[..], br#"{"Count":1,"Items":[],"ScannedCount":1}"#);
        assert_eq!(items.expect("captured").as_str(), r#"[{"pk":{"S":"é"}}]"#);
    }

    #[test]
    fn leaves_anything_else_alone() {
        for body in [
            &b"{\"Count\":0}"[..],
            b"<html>oops</html>",
            b"{\"Items\":[{\"pk\":",
            b"\xff\xfe{}",
        ] {
            let (rest, items) = split(Bytes::copy_from_slice(body));
            assert_eq!(&rest[..], body);
            assert!(items.is_none());
        }
    }
}
