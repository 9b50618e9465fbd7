// AMQP URLs as RabbitMQ's URI spec reads them.

import RabbitMQ
import Testing

@Suite struct AMQPURLTests {
    @Test func fullURLIsSplitAndDecoded() throws {
        let url = try AMQPURL("amqp://user%40corp:p%3Ass@mq.internal:5673/jobs%2Fbatch")
        #expect(url.host == "mq.internal" && url.port == 5673)
        #expect(url.user == "user@corp" && url.password == "p:ss")
        #expect(url.virtualHost == "jobs/batch")
    }

    @Test(arguments: ["amqp://localhost", "amqp://localhost/", "amqp://localhost/%2f", "amqp://localhost/%2F"])
    func defaultsAreGuestAndTheRootVirtualHost(_ text: String) throws {
        let url = try AMQPURL(text)
        #expect(url.user == "guest" && url.password == "guest" && url.port == 5672 && url.virtualHost == "/")
    }

    @Test(arguments: [
        "http://localhost", "amqp://", "amqp://host:99999", "amqp://host:x", "amqp://h/%zz",
        "amqp://h/?cacertfile=/ca.pem", "amqps://h/?verify=maybe", "amqps://h/?certfile=/c.pem", "amqps://h/?x=1",
    ])
    func malformedURLsAreRefusedWithTheirText(_ text: String) {
        #expect { try AMQPURL(text) } throws: { "\($0)".contains(text) }
    }

    @Test func descriptionHidesThePassword() throws {
        #expect("\(try AMQPURL("amqp://app:hunter2@host/"))" == "amqp://app:***@host:5672/%2f")
    }

    @Test func tlsURLsCarryTheirFiles() throws {
        let url = try AMQPURL(
            "amqps://app:pw@mq.example/%2f?cacertfile=/etc/ca.pem&certfile=/etc/c.pem&keyfile=/etc/k.pem")
        #expect(url.tls && url.port == 5671 && url.verifyPeer)
        #expect(url.caCertificate == "/etc/ca.pem" && url.certificate == "/etc/c.pem" && url.key == "/etc/k.pem")
        #expect("\(url)" == "amqps://app:***@mq.example:5671/%2f")
        #expect(try !AMQPURL("amqps://h/?verify=verify_none").verifyPeer)
        #expect(try !AMQPURL("amqp://h").tls)
    }

    @Test func aClusterIsAListOfNodeURLs() throws {
        let nodes = try AMQPURL.list("amqp://u:p@n1:5672/%2f, amqp://u:p@n2:5673/%2f,amqps://u:p@n3/%2f")
        #expect(nodes.map(\.host) == ["n1", "n2", "n3"] && nodes.map(\.port) == [5672, 5673, 5671])
        #expect(try AMQPURL.list("amqp://h").count == 1)
        #expect(throws: AMQPError.self) { try AMQPURL.list("") }
        #expect(throws: AMQPError.self) { try AMQPURL.list("amqp://h,http://x") }
    }
}
