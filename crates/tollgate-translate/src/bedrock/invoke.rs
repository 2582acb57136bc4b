//! Claude through Bedrock's InvokeModel: the stream arrives as event-stream frames, each
//! carrying one Anthropic stream event base64-encoded in `{"bytes": …}`. Unwrapped, it is
//! Anthropic's own stream, read by the Anthropic codecs.

use std::collections::VecDeque;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use tollgate_core::error::GatewayError;
use tollgate_wire::bedrock::PayloadPart;

use super::eventstream::{Frame, FrameReader};
use crate::canonical::{StreamDecoder, StreamEncoder, StreamTransform, TokenUsage};

/// Turns event-stream frames into Anthropic SSE bytes.
#[derive(Debug, Default)]
pub struct Unwrapper {
    frames: FrameReader,
}

impl Unwrapper {
    /// The SSE text of every complete frame in `chunk` (plus earlier partial ones).
    pub fn unwrap(&mut self, chunk: &[u8]) -> Result<Bytes, GatewayError> {
        self.frames.push(chunk);
        let mut sse = BytesMut::new();
        while let Some(frame) = self.frames.next_frame()? {
            match frame {
                Frame::Event { kind, payload } if kind == "chunk" => {
                    let part: PayloadPart<'_> =
                        serde_json::from_slice(&payload).map_err(|err| {
                            GatewayError::upstream_unreachable(format!(
                                "Bedrock sent an unreadable stream chunk: {err}."
                            ))
                        })?;
                    let event = STANDARD.decode(part.bytes.as_bytes()).map_err(|err| {
                        GatewayError::upstream_unreachable(format!(
                            "Bedrock sent a stream chunk that is not base64: {err}."
                        ))
                    })?;
                    #[derive(serde::Deserialize)]
                    struct Kind<'a> {
                        #[serde(rename = "type", borrow)]
                        kind: std::borrow::Cow<'a, str>,
                    }
                    let kind = serde_json::from_slice::<Kind<'_>>(&event)
                        .map(|k| k.kind.into_owned())
                        .unwrap_or_default();
                    sse.put_slice(b"event: ");
                    sse.put_slice(kind.as_bytes());
                    sse.put_slice(b"\ndata: ");
                    sse.put_slice(&event);
                    sse.put_slice(b"\n\n");
                }
                Frame::Event { .. } => {}
                Frame::Exception { kind, payload } => {
                    return Err(super::errors::stream_exception(&kind, &payload));
                }
            }
        }
        Ok(sse.freeze())
    }

    pub fn has_partial_frame(&self) -> bool {
        self.frames.has_partial_frame()
    }
}

/// An Anthropic stream decoder fed from InvokeModel frames (OpenAI clients of Claude).
pub struct InvokeDecoder<D> {
    unwrapper: Unwrapper,
    inner: D,
}

impl<D: StreamDecoder> InvokeDecoder<D> {
    pub fn new(inner: D) -> Self {
        InvokeDecoder {
            unwrapper: Unwrapper::default(),
            inner,
        }
    }
}

impl<D: StreamDecoder> StreamDecoder for InvokeDecoder<D> {
    fn decode(
        &mut self,
        chunk: Bytes,
        encoder: &mut dyn StreamEncoder,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        let sse = self.unwrapper.unwrap(&chunk)?;
        if sse.is_empty() {
            return Ok(());
        }
        self.inner.decode(sse, encoder, out)
    }

    fn end(
        &mut self,
        encoder: &mut dyn StreamEncoder,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        if self.unwrapper.has_partial_frame() {
            return Err(GatewayError::upstream_unreachable(
                "Bedrock's stream ended inside an event.",
            ));
        }
        self.inner.end(encoder, out)
    }
}

/// An Anthropic passthrough observer fed from InvokeModel frames (Anthropic clients of
/// Claude): the client receives Anthropic's SSE stream.
pub struct InvokeObserver<T> {
    unwrapper: Unwrapper,
    inner: T,
}

impl<T: StreamTransform> InvokeObserver<T> {
    pub fn new(inner: T) -> Self {
        InvokeObserver {
            unwrapper: Unwrapper::default(),
            inner,
        }
    }
}

impl<T: StreamTransform> StreamTransform for InvokeObserver<T> {
    fn on_bytes(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        let sse = self.unwrapper.unwrap(&chunk)?;
        if sse.is_empty() {
            return Ok(());
        }
        self.inner.on_bytes(sse, out)
    }

    fn on_end(&mut self, out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        if self.unwrapper.has_partial_frame() {
            return Err(GatewayError::upstream_unreachable(
                "Bedrock's stream ended inside an event.",
            ));
        }
        self.inner.on_end(out)
    }

    fn on_error(&mut self, err: &GatewayError, out: &mut VecDeque<Bytes>) {
        self.inner.on_error(err, out);
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.inner.usage()
    }
}
