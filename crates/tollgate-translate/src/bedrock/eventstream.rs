//! AWS event-stream framing (Bedrock's streaming responses): binary frames with typed headers
//! and CRCs, decoded by `aws-smithy-eventstream` from reads that may split frames anywhere.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use bytes::{Bytes, BytesMut};
use tollgate_core::error::GatewayError;

/// One decoded frame: an event, or an exception the service sent mid-stream.
#[derive(Debug)]
pub enum Frame {
    Event {
        kind: String,
        payload: Bytes,
    },
    /// `:exception-type` (e.g. `throttlingException`) and its `{"message"}` payload.
    Exception {
        kind: String,
        payload: Bytes,
    },
}

#[derive(Debug, Default)]
pub struct FrameReader {
    decoder: MessageFrameDecoder,
    buffer: BytesMut,
}

impl FrameReader {
    /// Adds a read; call `next` until it returns `None`.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, GatewayError> {
        match self.decoder.decode_frame(&mut self.buffer) {
            Ok(DecodedFrame::Incomplete) => Ok(None),
            Ok(DecodedFrame::Complete(message)) => Ok(Some(classify(message))),
            Err(err) => Err(GatewayError::upstream_unreachable(format!(
                "Bedrock sent an unreadable event-stream frame: {err}."
            ))),
        }
    }

    /// Whether a partial frame is left over.
    pub fn has_partial_frame(&self) -> bool {
        !self.buffer.is_empty()
    }
}

fn header(message: &Message, name: &str) -> Option<String> {
    message
        .headers()
        .iter()
        .find(|header| header.name().as_str() == name)
        .and_then(|header| header.value().as_string().ok())
        .map(|value| value.as_str().to_owned())
}

fn classify(message: Message) -> Frame {
    let payload = message.payload().clone();
    match header(&message, ":message-type").as_deref() {
        Some("exception") => Frame::Exception {
            kind: header(&message, ":exception-type").unwrap_or_default(),
            payload,
        },
        Some("error") => Frame::Exception {
            kind: header(&message, ":error-code").unwrap_or_default(),
            payload: header(&message, ":error-message")
                .map(|text| Bytes::from(serde_json::json!({ "message": text }).to_string()))
                .unwrap_or(payload),
        },
        _ => Frame::Event {
            kind: header(&message, ":event-type").unwrap_or_default(),
            payload,
        },
    }
}

/// Encodes one frame, as Bedrock would.
#[cfg(test)]
fn encode_frame(message_type: &str, kind: &str, payload: &[u8]) -> Bytes {
    use aws_smithy_types::event_stream::{Header, HeaderValue};
    let type_header = if message_type == "exception" {
        ":exception-type"
    } else {
        ":event-type"
    };
    let message = Message::new(Bytes::copy_from_slice(payload))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String(message_type.to_owned().into()),
        ))
        .add_header(Header::new(
            type_header,
            HeaderValue::String(kind.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut out).expect("a frame encodes");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_decode_whole_and_corruption_is_an_error() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&encode_frame(
            "event",
            "messageStart",
            br#"{"role":"assistant"}"#,
        ));
        stream.extend_from_slice(&encode_frame(
            "exception",
            "throttlingException",
            br#"{"message":"slow down"}"#,
        ));
        let mut reader = FrameReader::default();
        let mut frames = Vec::new();
        for piece in stream.chunks(7) {
            reader.push(piece);
            while let Some(frame) = reader.next_frame().unwrap() {
                frames.push(frame);
            }
        }
        assert!(!reader.has_partial_frame());
        assert!(
            matches!(&frames[0], Frame::Event { kind, payload } if kind == "messageStart" && &payload[..] == br#"{"role":"assistant"}"#)
        );
        assert!(
            matches!(&frames[1], Frame::Exception { kind, .. } if kind == "throttlingException")
        );

        let mut corrupted = encode_frame("event", "messageStop", b"{}").to_vec();
        let last = corrupted.len() - 1;
        corrupted[last] ^= 0xff;
        let mut reader = FrameReader::default();
        reader.push(&corrupted);
        assert!(reader.next_frame().is_err());
    }
}
