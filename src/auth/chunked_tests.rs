//! Tests of the aws-chunked decoder: the AWS streaming example, trailers in
//! both modes, malformed and truncated bodies, and arbitrary splits.

use super::*;
use proptest::prelude::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20130524T000000Z";
const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

fn key() -> [u8; 32] {
    sigv4::signing_key(SECRET, "20130524", "us-east-1", "s3")
}

fn signer() -> ChunkSigner {
    ChunkSigner::new(key(), DATE, SCOPE, SEED)
}

/// A client-side encoder, written from the AWS pages independently of the
/// decoder (it signs with `sigv4::hmac_hex` over spelled-out strings).
struct Encoder {
    signed: bool,
    prev: String,
    body: Vec<u8>,
}

impl Encoder {
    fn new(signed: bool) -> Self {
        Encoder { signed, prev: SEED.to_string(), body: Vec::new() }
    }

    fn chunk(&mut self, data: &[u8]) -> &mut Self {
        self.body.extend_from_slice(format!("{:x}", data.len()).as_bytes());
        if self.signed {
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{DATE}\n{SCOPE}\n{}\n{}\n{}",
                self.prev,
                sigv4::EMPTY_SHA256_HEX,
                sigv4::sha256_hex(data)
            );
            self.prev = sigv4::hmac_hex(&key(), &sts);
            self.body.extend_from_slice(format!(";chunk-signature={}", self.prev).as_bytes());
        }
        self.body.extend_from_slice(b"\r\n");
        if !data.is_empty() {
            self.body.extend_from_slice(data);
            self.body.extend_from_slice(b"\r\n");
        }
        self
    }

    fn payload(&mut self, data: &[u8], chunk_size: usize) -> &mut Self {
        for piece in data.chunks(chunk_size.max(1)) {
            self.chunk(piece);
        }
        self.chunk(b"")
    }

    fn trailers(&mut self, trailers: &[(&str, &str)]) -> &mut Self {
        let mut canonical = String::new();
        for (name, value) in trailers {
            self.body.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
            canonical.push_str(&format!("{name}:{value}\n"));
        }
        if self.signed {
            let sts = format!(
                "AWS4-HMAC-SHA256-TRAILER\n{DATE}\n{SCOPE}\n{}\n{}",
                self.prev,
                sigv4::sha256_hex(canonical.as_bytes())
            );
            let sig = sigv4::hmac_hex(&key(), &sts);
            self.body.extend_from_slice(format!("x-amz-trailer-signature:{sig}\r\n").as_bytes());
        }
        self
    }

    fn end(&mut self) -> Vec<u8> {
        self.body.extend_from_slice(b"\r\n");
        std::mem::take(&mut self.body)
    }
}

type Decoded = S3Result<(Vec<u8>, Vec<(String, String)>)>;

/// Decodes `body` pushed in the pieces delimited by `cuts`.
fn decode_split(body: &[u8], cuts: &[usize], signer: Option<ChunkSigner>, trailer: bool) -> Decoded {
    let mut dec = AwsChunkedDecoder::new(signer, trailer);
    let body = Bytes::copy_from_slice(body);
    let mut out = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    points.push(0);
    points.push(body.len());
    points.sort_unstable();
    points.dedup();
    for w in points.windows(2) {
        dec.push(body.slice(w[0]..w[1]), &mut out)?;
    }
    let trailers = dec.finish()?;
    Ok((out.concat(), trailers))
}

fn decode(body: &[u8], signer: Option<ChunkSigner>, trailer: bool) -> Decoded {
    decode_split(body, &[], signer, trailer)
}

fn code(r: Decoded) -> Option<S3ErrorCode> {
    r.err().map(|e| e.code)
}

/// The example of sigv4-streaming.html: 64 KiB + 1 KiB of 'a', three signatures.
fn aws_example_body() -> Vec<u8> {
    let mut body = Vec::new();
    let sigs = [
        (65536usize, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
        (1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
        (0, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"),
    ];
    for (len, sig) in sigs {
        body.extend_from_slice(format!("{len:x};chunk-signature={sig}\r\n").as_bytes());
        body.extend(std::iter::repeat_n(b'a', len));
        body.extend_from_slice(b"\r\n");
    }
    body
}

#[test]
fn aws_streaming_example_decodes() {
    let body = aws_example_body();
    assert_eq!(body.len(), 66824, "Content-Length of the AWS example");
    let (data, trailers) = decode(&body, Some(signer()), false).unwrap();
    assert_eq!(data.len(), 66560);
    assert!(data.iter().all(|&b| b == b'a'));
    assert!(trailers.is_empty());
}

#[test]
fn encoder_reproduces_the_aws_example() {
    let body = Encoder::new(true).chunk(&[b'a'; 65536]).chunk(&[b'a'; 1024]).chunk(b"").end();
    assert_eq!(body, aws_example_body());
}

#[test]
fn output_slices_share_the_input() {
    let body = Bytes::from(aws_example_body());
    let mut dec = AwsChunkedDecoder::new(Some(signer()), false);
    let mut out = Vec::new();
    dec.push(body.clone(), &mut out).unwrap();
    let range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
    assert!(out.iter().all(|b| range.contains(&(b.as_ptr() as usize))));
    assert_eq!(dec.decoded_len(), 66560);
}

#[test]
fn tampered_data_is_rejected() {
    let mut body = aws_example_body();
    body[100] = b'b';
    assert_eq!(code(decode(&body, Some(signer()), false)), Some(S3ErrorCode::SignatureDoesNotMatch));
}

#[test]
fn tampered_final_signature_is_rejected() {
    let mut body = aws_example_body();
    let len = body.len();
    body[len - 5] ^= 1;
    assert_eq!(code(decode(&body, Some(signer()), false)), Some(S3ErrorCode::SignatureDoesNotMatch));
}

#[test]
fn missing_chunk_signature_is_rejected_when_signed() {
    let body = Encoder::new(false).payload(b"hello", 5).end();
    assert_eq!(code(decode(&body, Some(signer()), false)), Some(S3ErrorCode::SignatureDoesNotMatch));
}

#[test]
fn unsigned_trailer_as_sdks_send_it() {
    // boto3 >= 1.36, aws-cli v2, JS v3: STREAMING-UNSIGNED-PAYLOAD-TRAILER.
    let body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
    let (data, trailers) = decode(body, None, true).unwrap();
    assert_eq!(data, b"hello");
    assert_eq!(trailers, vec![("x-amz-checksum-crc32".to_string(), "NhCmhg==".to_string())]);
}

#[test]
fn trailer_end_may_be_missing_at_eof() {
    for body in [
        &b"5\r\nhello\r\n0\r\nX-Amz-Checksum-CRC32:NhCmhg==\r\n"[..],
        &b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg=="[..],
        &b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r"[..],
    ] {
        let (_, trailers) = decode(body, None, true).unwrap();
        assert_eq!(trailers, vec![("x-amz-checksum-crc32".to_string(), "NhCmhg==".to_string())]);
    }
}

#[test]
fn empty_payload_with_trailer() {
    // A zero-byte PUT still carries framing (client-pitfalls.md item 7).
    let (data, trailers) = decode(b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", None, true).unwrap();
    assert!(data.is_empty());
    assert_eq!(trailers.len(), 1);
    let (data, trailers) = decode(b"0\r\n\r\n", None, true).unwrap();
    assert!(data.is_empty() && trailers.is_empty());
}

#[test]
fn blank_line_before_trailers_is_tolerated() {
    let (_, trailers) = decode(b"0\r\n\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", None, true).unwrap();
    assert_eq!(trailers.len(), 1);
}

#[test]
fn signed_trailer_round_trip_and_tamper() {
    let body = Encoder::new(true).payload(b"hello world", 4).trailers(&[("x-amz-checksum-crc32c", "yZRlqg==")]).end();
    let (data, trailers) = decode(&body, Some(signer()), true).unwrap();
    assert_eq!(data, b"hello world");
    assert_eq!(trailers, vec![("x-amz-checksum-crc32c".to_string(), "yZRlqg==".to_string())]);

    let text = String::from_utf8(body).unwrap();
    let tampered = text.replace("yZRlqg==", "yZRlqh==");
    assert_eq!(code(decode(tampered.as_bytes(), Some(signer()), true)), Some(S3ErrorCode::SignatureDoesNotMatch));
    let start = text.find("x-amz-trailer-signature").unwrap();
    let unsigned = format!("{}\r\n", &text[..start]);
    assert_eq!(code(decode(unsigned.as_bytes(), Some(signer()), true)), Some(S3ErrorCode::SignatureDoesNotMatch));
}

#[test]
fn trailer_signature_matches_independent_computation() {
    // Trailer signature after the final chunk of the sigv4-streaming.html example,
    // computed with Python's hmac/hashlib from the sigv4-streaming-trailers.html
    // string-to-sign layout ("AWS4-HMAC-SHA256-TRAILER\n{date}\n{scope}\n{prev}\n{sha256}").
    let mut body = aws_example_body();
    body.truncate(body.len() - 2);
    body.extend_from_slice(b"x-amz-checksum-crc32c:sOO8/Q==\r\n");
    body.extend_from_slice(
        b"x-amz-trailer-signature:838d1eeafd0ec086f3e98ef47cfb73e3cf6fea3c489e22a61089fa643e8b4b61\r\n\r\n",
    );
    let (data, trailers) = decode(&body, Some(signer()), true).unwrap();
    assert_eq!(data.len(), 66560);
    assert_eq!(trailers, vec![("x-amz-checksum-crc32c".to_string(), "sOO8/Q==".to_string())]);
}

#[test]
fn truncated_bodies_are_incomplete() {
    let body = Encoder::new(true).payload(b"hello world", 4).end();
    // Everything up to (not including) the final chunk's header line is incomplete.
    let final_header = body.len() - (2 + 1 + ";chunk-signature=".len() + 64 + 2);
    for cut in 0..final_header {
        let r = decode(&body[..cut], Some(signer()), false);
        assert_eq!(code(r), Some(S3ErrorCode::IncompleteBody), "cut at {cut}");
    }
}

#[test]
fn malformed_framing_is_invalid_request() {
    for body in [&b"zz\r\nhello\r\n0\r\n\r\n"[..], b"5\r\nhelloXX0\r\n\r\n", b"\r\n", b"12345678901234567\r\n"] {
        assert_eq!(code(decode(body, None, false)), Some(S3ErrorCode::InvalidRequest), "{body:?}");
    }
    let long = vec![b'1'; MAX_LINE + 1];
    assert_eq!(code(decode(&long, None, false)), Some(S3ErrorCode::InvalidRequest));
}

#[test]
fn trailers_refused_when_not_expected_and_junk_after_end() {
    let body = b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
    assert_eq!(code(decode(body, None, false)), Some(S3ErrorCode::InvalidRequest));
    assert_eq!(code(decode(b"0\r\n\r\njunk", None, false)), Some(S3ErrorCode::InvalidRequest));
    assert!(decode(b"0\r\n\r\n\r\n", None, false).is_ok());
}

#[test]
fn trailer_section_is_bounded() {
    let mut body = b"0\r\n".to_vec();
    for i in 0..1000 {
        body.extend_from_slice(format!("x-amz-meta-{i}:{}\r\n", "v".repeat(40)).as_bytes());
    }
    assert_eq!(code(decode(&body, None, true)), Some(S3ErrorCode::InvalidRequest));
}

#[test]
fn every_two_way_split_and_byte_at_a_time() {
    let body = Encoder::new(true)
        .payload(b"The quick brown fox jumps over the lazy dog", 7)
        .trailers(&[("x-amz-checksum-crc32", "AAAAAA==")])
        .end();
    let expected = decode(&body, Some(signer()), true).unwrap();
    for cut in 0..=body.len() {
        assert_eq!(decode_split(&body, &[cut], Some(signer()), true).unwrap(), expected, "cut {cut}");
    }
    let every: Vec<usize> = (0..body.len()).collect();
    assert_eq!(decode_split(&body, &every, Some(signer()), true).unwrap(), expected);
}

proptest! {
    #[test]
    fn random_splits_give_the_same_result(
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
        chunk_size in 1usize..600,
        signed in any::<bool>(),
        trailer in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut enc = Encoder::new(signed);
        enc.payload(&payload, chunk_size);
        let expected_trailers = if trailer {
            enc.trailers(&[("x-amz-checksum-crc64nvme", "AAAAAAAAAAA=")]);
            vec![("x-amz-checksum-crc64nvme".to_string(), "AAAAAAAAAAA=".to_string())]
        } else {
            Vec::new()
        };
        let body = enc.end();
        let s = signed.then(signer);
        let (data, trailers) = decode_split(&body, &cuts, s, trailer).unwrap();
        prop_assert_eq!(data, payload);
        prop_assert_eq!(trailers, expected_trailers);
    }
}

proptest! {
    /// Arbitrary bytes, arbitrarily split, answer an error or a result, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(
        body in proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b';'), Just(b':'), Just(b'0'), any::<u8>()],
            0..300,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        signed in any::<bool>(),
        trailer in any::<bool>(),
    ) {
        let _ = decode_split(&body, &cuts, signed.then(signer), trailer);
    }
}
