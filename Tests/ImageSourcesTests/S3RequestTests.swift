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
}
