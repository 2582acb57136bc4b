//! Stream translation allocates (next to) nothing per chunk beyond the output bytes: each
//! direction is fed a long stream one event per read, and the heap allocations its middle part
//! makes are counted (on this thread only, so other tests cannot disturb the count).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;

use bytes::Bytes;
use tollgate_translate::anthropic::inbound::AnthropicEncoder;
use tollgate_translate::anthropic::outbound::{AnthropicDecoder, Plan};
use tollgate_translate::canonical::{StreamTransform, Translated};
use tollgate_translate::openai::codec::{ChunkDecoder, ChunkEncoder};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const DELTAS: usize = 1_000;

/// Heap allocations per text delta once the stream is under way: the head and the first
/// deltas are fed before counting starts (buffers reach their working size there); the client
/// consumes each output frame before the next read, as the relay does.
fn allocations_per_delta(mut transform: Translated, head: &[Bytes], delta: &Bytes) -> f64 {
    let mut out = VecDeque::new();
    for chunk in head.iter().chain(std::iter::repeat_n(delta, 10)) {
        transform.on_bytes(chunk.clone(), &mut out).unwrap();
        out.clear();
    }
    let before = allocations();
    let mut written = 0;
    for _ in 0..DELTAS {
        transform.on_bytes(delta.clone(), &mut out).unwrap();
        written += out.iter().map(Bytes::len).sum::<usize>();
        out.clear();
    }
    let per_delta = (allocations() - before) as f64 / DELTAS as f64;
    assert!(
        written > DELTAS * 20,
        "every delta produced output ({written} bytes)"
    );
    per_delta
}

fn anthropic_event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

#[test]
fn anthropic_to_openai_chunks_allocate_nothing_per_delta() {
    let head = [
        anthropic_event(
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}"#,
        ),
        anthropic_event(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
    ];
    let delta = anthropic_event(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" word"}}"#,
    );
    let transform = Translated::new(
        Box::new(AnthropicDecoder::new(Plan::default())),
        Box::new(ChunkEncoder::new(true)),
    );
    let per_delta = allocations_per_delta(transform, &head, &delta);
    assert_eq!(per_delta, 0.0, "allocations per Anthropic text delta");
}

#[test]
fn openai_chunks_to_anthropic_events_allocate_nothing_per_delta() {
    let chunk = |delta: &str| {
        Bytes::from(format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":null}}]}}\n\n"
        ))
    };
    let head = [chunk(r#"{"role":"assistant","content":""}"#)];
    let delta = chunk(r#"{"content":" word"}"#);
    let transform = Translated::new(
        Box::new(ChunkDecoder::default()),
        Box::new(AnthropicEncoder::new("claude")),
    );
    let per_delta = allocations_per_delta(transform, &head, &delta);
    // One remains: the chunk's `choices` list is read into a Vec.
    assert!(
        per_delta <= 1.0,
        "allocations per OpenAI content chunk: {per_delta}"
    );
}
