// Requests for S3 objects: the endpoint URL by S3's addressing rules and the Signature Version 4 headers, identical
// to botocore's for the same object, credentials and time (tools/reference/s3_fixtures.py), session tokens,
// other stores' endpoints and keys that need escaping included.

import Foundation
import Testing

@testable import ImageSources

@Suite struct S3RequestTests {
    struct Case: Decodable {
        let url: String
        let region: String
        let endpoint: String?
        let access_key: String
        let secret_key: String
        let session_token: String?
        let time: String
        let http_url: String
        let headers: [String: String]
    }

    struct Fixture: Decodable {
        let cases: [Case]
    }

    static let cases: [Case] = {
        let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/s3_requests.json")
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url)).cases
    }()

    @Test(arguments: cases.map(\.url))
    func urlAndSignatureAreBotocores(_ url: String) throws {
        let testCase = try #require(Self.cases.first { $0.url == url })
        let settings = S3Settings(
            accessKey: testCase.access_key, secretKey: testCase.secret_key, sessionToken: testCase.session_token,
            region: testCase.region, endpoint: testCase.endpoint)
        let date = try #require(ISO8601DateFormatter().date(from: testCase.time))
        let request = try S3Request(url, settings: settings, date: date)
        #expect(request.url == testCase.http_url)
        var headers: [String: String] = [:]
        for line in request.headers {
            let parts = line.split(separator: ":", maxSplits: 1)
            headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        #expect(headers == testCase.headers)
    }

    @Test func withoutCredentialsRequestsAreUnsigned() throws {
        let request = try S3Request("s3://open-data/a.jpg", settings: S3Settings(region: "eu-central-1"))
        #expect(request.url == "https://open-data.s3.eu-central-1.amazonaws.com/a.jpg" && request.headers.isEmpty)
        let environment = S3Settings(environment: [
            "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_DEFAULT_REGION": "eu-north-1",
            "AWS_ENDPOINT_URL": "http://minio:9000", "AWS_SESSION_TOKEN": "",
        ])
        #expect(
            environment
                == S3Settings(accessKey: "a", secretKey: "b", region: "eu-north-1", endpoint: "http://minio:9000"))
        #expect(S3Settings(environment: ["AWS_REGION": "x", "AWS_DEFAULT_REGION": "y"]).region == "x")
    }

    @Test(arguments: ["s3://bucket", "s3://bucket/", "s3:///key", "S3://"])
    func urlsWithoutABucketOrKeyAreRefused(_ url: String) {
        #expect {
            try S3Request(url, settings: S3Settings())
        } throws: { "\($0)".contains("an S3 URL is s3://bucket/key") }
    }

    /// A bucket name can hold nothing that ends a host name or starts a path, query or fragment: the request goes
    /// to the bucket's endpoint or nowhere.
    @Test(arguments: ["s3://134744072#/key", "s3://svc?/k", "s3://a@b/k", "s3://a:1/k", "s3://bücket/k"])
    func whatIsNotABucketNameIsRefused(_ url: String) {
        #expect {
            try S3Request(url, settings: S3Settings(accessKey: "k", secretKey: "s"))
        } throws: { "\($0)".contains("is not an S3 bucket name") }
    }

    @Test func settingsThatCannotWorkAreNamedAtStart() {
        #expect(S3Settings().problem == nil && S3Settings(accessKey: "k", secretKey: "s").problem == nil)
        #expect(S3Settings(accessKey: "k").problem?.contains("go together") == true)
        #expect(
            S3Settings(accessKey: "k", secretKey: "s\nx").problem == "AWS_SECRET_ACCESS_KEY holds a control character")
        #expect(S3Settings(environment: ["AWS_SESSION_TOKEN": "t\r\n"]).sessionToken == "t", "trimmed")
        for endpoint in ["minio:9000", "ftp://h", "http://user:pw@h", "http://h/?x=1"] {
            #expect(S3Settings(endpoint: endpoint).problem?.contains("is not an http(s) URL") == true, "\(endpoint)")
        }
        #expect {
            try ImageListing.expand(["s3://bucket/shards/*.tar"])
        } throws: { "\($0)".contains("globs are not expanded in s3:// URLs") }
    }
}
