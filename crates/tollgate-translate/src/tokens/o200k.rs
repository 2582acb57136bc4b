//! Token counts under OpenAI's `o200k_base` encoding, the same counts tiktoken gives (a test
//! compares them), from a vocabulary that stays small in memory.
//!
//! tiktoken-rs keeps the vocabulary three times over in hash maps of owned byte strings, about
//! 45 MB once loaded: most of a gateway's memory under load, for an estimate few requests need.
//! Here the vocabulary is read-only data in the binary (written by `build.rs` from
//! tiktoken-rs's own copy) and the lookup table holds only ranks: about 1 MB of heap.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;
use std::sync::LazyLock;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

type Rank = u32;

static VOCABULARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base.bin"));
static PATTERN: &str = include_str!(concat!(env!("OUT_DIR"), "/o200k_base.pattern"));

static ENCODING: LazyLock<Encoding> = LazyLock::new(Encoding::load);

/// How many tokens `text` is under `o200k_base`, special tokens read as ordinary text (as
/// tiktoken's `encode_ordinary` does).
pub fn count(text: &str) -> u64 {
    ENCODING.count(text)
}

struct Encoding {
    /// Splits text into the pieces that are encoded apart.
    pieces: fancy_regex::Regex,
    tokens: Tokens,
    /// Ranks, found by their token's bytes.
    by_bytes: HashTable<Rank>,
}

/// The vocabulary as `build.rs` lays it out.
struct Tokens {
    offsets: &'static [u8],
    bytes: &'static [u8],
}

impl Tokens {
    fn len(&self) -> usize {
        self.offsets.len() / 4 - 1
    }

    fn get(&self, rank: Rank) -> &'static [u8] {
        let at = rank as usize * 4;
        let start = u32::from_le_bytes(self.offsets[at..at + 4].try_into().unwrap());
        let end = u32::from_le_bytes(self.offsets[at + 4..at + 8].try_into().unwrap());
        &self.bytes[start as usize..end as usize]
    }
}

impl Encoding {
    fn load() -> Encoding {
        let count = u32::from_le_bytes(VOCABULARY[..4].try_into().unwrap()) as usize;
        let (offsets, bytes) = VOCABULARY[4..].split_at((count + 1) * 4);
        let tokens = Tokens { offsets, bytes };
        let mut by_bytes = HashTable::with_capacity(tokens.len());
        for rank in 0..tokens.len() as Rank {
            let token = tokens.get(rank);
            by_bytes.insert_unique(FxBuildHasher.hash_one(token), rank, |&rank| {
                FxBuildHasher.hash_one(tokens.get(rank))
            });
        }
        Encoding {
            pieces: fancy_regex::Regex::new(PATTERN).expect("tiktoken's o200k pattern compiles"),
            tokens,
            by_bytes,
        }
    }

    fn rank(&self, bytes: &[u8]) -> Option<Rank> {
        self.by_bytes
            .find(FxBuildHasher.hash_one(bytes), |&rank| {
                self.tokens.get(rank) == bytes
            })
            .copied()
    }

    fn count(&self, text: &str) -> u64 {
        let mut merges = Merges::default();
        let mut total = 0;
        for piece in self.pieces.find_iter(text) {
            // The pattern has no construct that can fail at run time (its look-ahead is one
            // character); were one to, the rest of the text counts byte by byte.
            let Ok(piece) = piece else {
                return total + text.len() as u64;
            };
            let piece = piece.as_str().as_bytes();
            total += match self.rank(piece) {
                Some(_) => 1,
                None => merges.count(piece, self) as u64,
            };
        }
        total
    }
}

/// Byte-pair merging of one piece, counting the tokens it ends as. Starting from single bytes,
/// the adjacent pair whose joined bytes have the lowest rank merges first, the leftmost of
/// equal pairs first, until no adjacent pair is a token: tiktoken's rule. The candidate pairs
/// wait in a heap, so a long piece costs n·log n rather than n².
#[derive(Default)]
struct Merges {
    /// Where the part starting at each byte ends (`n` past the last); meaningless inside a part.
    end: Vec<usize>,
    /// Where the part before the one starting at each byte starts.
    start_before: Vec<usize>,
    starts_part: Vec<bool>,
    candidates: BinaryHeap<Reverse<(Rank, usize, usize)>>,
}

impl Merges {
    fn count(&mut self, piece: &[u8], encoding: &Encoding) -> usize {
        let n = piece.len();
        if n < 2 {
            return n;
        }
        self.end.clear();
        self.end.extend(1..=n);
        self.start_before.clear();
        self.start_before
            .extend((0..n).map(|at| at.wrapping_sub(1)));
        self.starts_part.clear();
        self.starts_part.resize(n, true);
        self.candidates.clear();
        for at in 0..n - 1 {
            self.offer(piece, at, at + 2, encoding);
        }

        let mut parts = n;
        while let Some(Reverse((_, start, end))) = self.candidates.pop() {
            let middle = self.end[start];
            // Stale: one of the two parts has merged with another since this pair was offered.
            if !self.starts_part[start] || middle == n || self.end[middle] != end {
                continue;
            }
            self.starts_part[middle] = false;
            self.end[start] = end;
            if end < n {
                self.start_before[end] = start;
                self.offer(piece, start, self.end[end], encoding);
            }
            if start > 0 {
                self.offer(piece, self.start_before[start], end, encoding);
            }
            parts -= 1;
        }
        parts
    }

    /// Queues the pair spanning `piece[start..end]` if its bytes are a token.
    fn offer(&mut self, piece: &[u8], start: usize, end: usize, encoding: &Encoding) {
        if let Some(rank) = encoding.rank(&piece[start..end]) {
            self.candidates.push(Reverse((rank, start, end)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text of every kind the pattern splits differently: letters of several scripts and
    /// cases, contractions, digits, punctuation runs, line breaks, and whitespace before words.
    fn corpus() -> Vec<String> {
        let mut texts: Vec<String> = [
            "Hello, world!",
            "The quick brown fox doesn't jump; it's LAZY'LL and we'VE seen 1234567 of them.",
            "fn main() {\n    println!(\"{}\", x + 1);\n}\r\n\r\n\t\tindent  trailing   \n",
            "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            "Ünïcödé straße ÀÉÎ naïve café — “quotes” ‘single’ … ½ ¾",
            "漢字かなカナ한국어 العربية עברית हिन्दी ไทย русский Ελληνικά",
            "emoji 👩‍👩‍👧‍👦 🇳🇴 ✅ 🚀🚀🚀 and combining e\u{301} a\u{308}",
            "   leading spaces and a final newline\n",
            "https://example.com/a/b?c=d&e=f#g /usr/local/bin//\n//",
            "<|endoftext|> is read as text, as <|endofprompt|> is",
        ]
        .map(String::from)
        .to_vec();
        // Long pieces, past where tiktoken switches to its heap-based merge.
        texts.push("a".repeat(1000));
        texts.push("abababababcabc".repeat(60));
        texts.push("😀".repeat(200));
        texts.push("!@#$%^&*()_+-=".repeat(40));
        texts.push("SGVsbG8gd29ybGQhIFRoaXMgaXMgYmFzZTY0IGVuY29kZWQgdGV4dC4K".repeat(30));
        // Random text over a mixed alphabet.
        let alphabet: Vec<char> = "aAbBzZ09 '\n\t.,;:!?-_/\\\"{}[]éÜß漢字😀\u{301}ñ\r"
            .chars()
            .collect();
        let mut random = fastrand::Rng::with_seed(200_000);
        for _ in 0..300 {
            let length = random.usize(1..400);
            texts.push(
                (0..length)
                    .map(|_| alphabet[random.usize(..alphabet.len())])
                    .collect(),
            );
        }
        texts
    }

    #[test]
    fn counts_are_tiktokens() {
        let reference = tiktoken_rs::o200k_base().unwrap();
        for text in corpus() {
            assert_eq!(
                count(&text),
                reference.encode_ordinary(&text).len() as u64,
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_whole_vocabulary_is_read() {
        assert_eq!(ENCODING.tokens.len(), 199_998);
        // The first and last ordinary tokens, and one in the middle, each one token.
        for rank in [0, 100_000, 199_997] {
            let token = ENCODING.tokens.get(rank);
            assert_eq!(ENCODING.rank(token), Some(rank));
        }
    }
}
