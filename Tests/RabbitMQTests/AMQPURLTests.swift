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
        "http://localhost", "amqps://localhost", "amqp://", "amqp://host:99999", "amqp://host:x", "amqp://h/%zz",
    ])
    func malformedURLsAreRefusedWithTheirText(_ text: String) {
        #expect { try AMQPURL(text) } throws: { "\($0)".contains(text) }
    }

    @Test func descriptionHidesThePassword() throws {
        #expect("\(try AMQPURL("amqp://app:hunter2@host/"))" == "amqp://app:***@host:5672/%2f")
    }
}
