// AWS Signature Version 4 for S3 requests: canonical request, string to sign, signing key and
// the Authorization header. Pure functions (no I/O, no clock), thread-safe.
//
// S3 specifics: the canonical URI is the request path encoded once (no double encoding, no
// dot-segment normalisation); query parameter names and values are encoded with UriEncode and
// sorted; a value-less parameter ("?uploads") signs as "uploads=".
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vdisk::backup::s3 {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // optional (STS); sent as x-amz-security-token
};

using KeyValues = std::vector<std::pair<std::string, std::string>>;

struct SigningInput {
  std::string method;         // "GET", "PUT", ...
  std::string encoded_path;   // already encoded with UriEncode(path, /*encode_slash=*/false)
  KeyValues query;            // raw (unencoded) names and values
  KeyValues headers;          // every header to sign, must include host and x-amz-date
  std::string payload_hash;   // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

// RFC 3986 encoding as SigV4 wants it: unreserved (A-Z a-z 0-9 - _ . ~) kept, everything else
// %XX (upper-case hex); '/' kept unless encode_slash.
std::string UriEncode(std::string_view in, bool encode_slash);

// "name=value&..." sorted by encoded name then value.
std::string CanonicalQueryString(const KeyValues& query);

// The canonical request; `signed_headers` receives "host;x-amz-date;...".
std::string CanonicalRequest(const SigningInput& in, std::string* signed_headers);

// "YYYYMMDD/<region>/<service>/aws4_request".
std::string CredentialScope(std::string_view amz_date, std::string_view region,
                            std::string_view service);

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);

// The derived signing key (32 raw bytes).
std::string SigningKey(std::string_view secret_key, std::string_view date_yyyymmdd,
                       std::string_view region, std::string_view service);

// The full Authorization header value:
// "AWS4-HMAC-SHA256 Credential=<ak>/<scope>, SignedHeaders=<...>, Signature=<hex>".
// `amz_date` must equal the x-amz-date header value in `in.headers`.
std::string Authorization(const Credentials& creds, std::string_view region,
                          std::string_view service, std::string_view amz_date,
                          const SigningInput& in);

// "YYYYMMDDTHHMMSSZ" for a UTC time.
std::string AmzDate(std::time_t t);

// Hex helpers over OpenSSL.
std::string HexEncode(std::string_view bytes);
std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);  // raw 32 bytes

inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

}  // namespace vdisk::backup::s3
