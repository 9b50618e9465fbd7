// A real S3 server for tests: moto's (`tools/s3_server.sh`, named by INFMLLM_S3_SERVER) on a loopback port of its
// own, with a bucket's objects put unsigned, then signatures required from then on: a request must be signed with the
// access key it made (moto checks each signature with botocore's signer), or it is refused.

import Foundation

public final class S3Server {
    public let port: Int
    public let endpoint: String
    /// The access key the server made, the only credentials it takes once `requireSignatures()` has run.
    public private(set) var accessKey = ""
    public private(set) var secretKey = ""
    private let process: ServerProcess
    private let directory: URL

    public static var program: String? { ProcessInfo.processInfo.environment["INFMLLM_S3_SERVER"] }
    /// Whether the suites that need it run: the server is named, or required (ops/test.sh sets both).
    public static var runs: Bool {
        ProcessInfo.processInfo.environment["INFMLLM_REQUIRE_S3"] == "1" || program != nil
    }

    public init() throws {
        guard let program = Self.program else { throw NginxError(message: "INFMLLM_S3_SERVER is not set") }
        directory = ScratchFolders.url("infmllm-s3")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try NginxServer.freePort()
        endpoint = "http://127.0.0.1:\(port)"
        process = try ServerProcess(
            [program, "-H", "127.0.0.1", "-p", String(port)], log: directory.appendingPathComponent("log").path)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !process.hasExited() {
            if NginxServer.accepts(port) {
                try makeReader()
                return
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw NginxError(message: "moto_server did not start on port \(port): \(log)")
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    public var log: String {
        (try? String(contentsOf: directory.appendingPathComponent("log"), encoding: .utf8)) ?? ""
    }

    /// An IAM user allowed everything in S3, and its access key.
    private func makeReader() throws {
        // Unsigned IAM calls reach IAM by the service their credential scope names.
        let scope =
            "Authorization: AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/iam/aws4_request, "
            + "SignedHeaders=host, Signature=0"
        let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
        for form in [
            ["Action=CreateUser", "UserName=reader"],
            ["Action=PutUserPolicy", "UserName=reader", "PolicyName=s3", "PolicyDocument=\(policy)"],
        ] {
            _ = try curl(
                ["-X", "POST", "-H", scope] + (form + ["Version=2010-05-08"]).flatMap { ["--data-urlencode", $0] })
        }
        let created = try curl([
            "-X", "POST", "-H", scope, "-d", "Action=CreateAccessKey&UserName=reader&Version=2010-05-08",
        ])
        func element(_ name: String) -> String {
            guard let start = created.range(of: "<\(name)>"), let end = created.range(of: "</\(name)>") else {
                return ""
            }
            return String(created[start.upperBound..<end.lowerBound])
        }
        accessKey = element("AccessKeyId")
        secretKey = element("SecretAccessKey")
        guard !accessKey.isEmpty, !secretKey.isEmpty else { throw NginxError(message: "no access key: \(created)") }
    }

    /// Puts `data` at `key` of `bucket` (made when missing), unsigned: before `requireSignatures()` only.
    public func put(_ bucket: String, _ key: String, _ data: Data) throws {
        _ = try curl(["-X", "PUT"], path: "/" + bucket)
        let file = directory.appendingPathComponent("upload")
        try data.write(to: file)
        let encoded = key.addingPercentEncoding(
            withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "/-._~")))!
        _ = try curl(["--path-as-is", "-T", file.path], path: "/\(bucket)/\(encoded)")
    }

    /// From now on, every request must be signed with the server's access key.
    public func requireSignatures() throws {
        _ = try curl(
            ["-X", "POST", "-H", "Content-Type: text/plain", "--data-binary", "0"], path: "/moto-api/reset-auth")
    }

    private func curl(_ arguments: [String], path: String = "/") throws -> String {
        let result = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/bin/curl"), ["-s", "-f", "-S"] + arguments + [endpoint + path])
        guard result.status == 0 else { throw NginxError(message: "curl \(arguments) \(path): \(result.output)") }
        return result.output
    }
}
