// SigV4 against AWS's published examples: the signature-v4 test suite (get-vanilla family,
// service "service", 2015-08-30) and the worked S3 examples of "Signature Calculations for the
// Authorization Header" (examplebucket, 2013-05-24). Expected values are AWS's.
#include "backup/s3/sigv4.h"

#include <gtest/gtest.h>

namespace vdisk::backup::s3 {
namespace {

const Credentials kSuiteCreds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const Credentials kS3Creds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};

std::string SignatureOf(const std::string& auth) {
  auto pos = auth.find("Signature=");
  return pos == std::string::npos ? "" : auth.substr(pos + 10);
}

SigningInput SuiteGet(std::string path, KeyValues query) {
  SigningInput in;
  in.method = "GET";
  in.encoded_path = UriEncode(path, false);
  in.query = std::move(query);
  in.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  in.payload_hash = std::string(kEmptySha256);
  return in;
}

TEST(SigV4Suite, GetVanillaCanonicalRequestAndAuthorization) {
  SigningInput in = SuiteGet("/", {});
  std::string signed_headers;
  std::string canon = CanonicalRequest(in, &signed_headers);
  EXPECT_EQ(canon,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(signed_headers, "host;x-amz-date");
  EXPECT_EQ(Sha256Hex(canon), "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(Authorization(kSuiteCreds, "us-east-1", "service", "20150830T123600Z", in),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4Suite, GetVanillaQueryOrderKeyCase) {
  SigningInput in = SuiteGet("/", {{"Param2", "value2"}, {"Param1", "value1"}});
  EXPECT_EQ(CanonicalQueryString(in.query), "Param1=value1&Param2=value2");
  EXPECT_EQ(SignatureOf(Authorization(kSuiteCreds, "us-east-1", "service", "20150830T123600Z", in)),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST(SigV4Suite, GetUtf8Path) {
  SigningInput in = SuiteGet("/\xE1\x88\xB4", {});
  EXPECT_EQ(in.encoded_path, "/%E1%88%B4");
  EXPECT_EQ(SignatureOf(Authorization(kSuiteCreds, "us-east-1", "service", "20150830T123600Z", in)),
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

SigningInput S3Example(std::string method, std::string path, KeyValues query,
                       std::string payload_hash) {
  SigningInput in;
  in.method = std::move(method);
  in.encoded_path = UriEncode(path, false);
  in.query = std::move(query);
  in.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                {"x-amz-date", "20130524T000000Z"},
                {"x-amz-content-sha256", payload_hash}};
  in.payload_hash = std::move(payload_hash);
  return in;
}

TEST(SigV4S3Examples, GetObjectWithRange) {
  SigningInput in = S3Example("GET", "/test.txt", {}, std::string(kEmptySha256));
  in.headers.emplace_back("Range", "bytes=0-9");
  std::string canon = CanonicalRequest(in, nullptr);
  EXPECT_EQ(StringToSign("20130524T000000Z", CredentialScope("20130524T000000Z", "us-east-1", "s3"),
                         canon),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  std::string auth = Authorization(kS3Creds, "us-east-1", "s3", "20130524T000000Z", in);
  EXPECT_NE(auth.find("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"),
            std::string::npos);
  EXPECT_EQ(SignatureOf(auth), "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4S3Examples, PutObjectEncodedKeyAndBody) {
  std::string body_hash = Sha256Hex("Welcome to Amazon S3.");
  EXPECT_EQ(body_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  SigningInput in = S3Example("PUT", "/test$file.text", {}, body_hash);
  EXPECT_EQ(in.encoded_path, "/test%24file.text");
  in.headers.emplace_back("Date", "Fri, 24 May 2013 00:00:00 GMT");
  in.headers.emplace_back("x-amz-storage-class", "REDUCED_REDUNDANCY");
  std::string canon = CanonicalRequest(in, nullptr);
  EXPECT_EQ(StringToSign("20130524T000000Z", CredentialScope("20130524T000000Z", "us-east-1", "s3"),
                         canon),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  std::string auth = Authorization(kS3Creds, "us-east-1", "s3", "20130524T000000Z", in);
  EXPECT_NE(auth.find("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"),
            std::string::npos);
  EXPECT_EQ(SignatureOf(auth), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4S3Examples, GetBucketLifecycleValuelessParameter) {
  SigningInput in = S3Example("GET", "/", {{"lifecycle", ""}}, std::string(kEmptySha256));
  EXPECT_EQ(CanonicalQueryString(in.query), "lifecycle=");
  std::string canon = CanonicalRequest(in, nullptr);
  EXPECT_EQ(Sha256Hex(canon), "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
  EXPECT_EQ(SignatureOf(Authorization(kS3Creds, "us-east-1", "s3", "20130524T000000Z", in)),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4S3Examples, ListObjectsSortedQuery) {
  SigningInput in =
      S3Example("GET", "/", {{"prefix", "J"}, {"max-keys", "2"}}, std::string(kEmptySha256));
  EXPECT_EQ(CanonicalQueryString(in.query), "max-keys=2&prefix=J");
  EXPECT_EQ(SignatureOf(Authorization(kS3Creds, "us-east-1", "s3", "20130524T000000Z", in)),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, UriEncodeRules) {
  EXPECT_EQ(UriEncode("a b+c/d:e", false), "a%20b%2Bc/d%3Ae");
  EXPECT_EQ(UriEncode("a/b", true), "a%2Fb");
  EXPECT_EQ(UriEncode("A-z_0.9~", true), "A-z_0.9~");
  EXPECT_EQ(UriEncode("=&?#%", true), "%3D%26%3F%23%25");
}

TEST(SigV4, HeaderValuesAreTrimmedAndCollapsed) {
  SigningInput in;
  in.method = "GET";
  in.encoded_path = "/";
  in.headers = {{"Host", "h"}, {"X-Amz-Date", "20150830T123600Z"}, {"My-Header", "  a   b  c "}};
  in.payload_hash = std::string(kEmptySha256);
  std::string canon = CanonicalRequest(in, nullptr);
  EXPECT_NE(canon.find("my-header:a b c\n"), std::string::npos);
}

TEST(SigV4, AmzDate) { EXPECT_EQ(AmzDate(1369353600), "20130524T000000Z"); }

}  // namespace
}  // namespace vdisk::backup::s3
