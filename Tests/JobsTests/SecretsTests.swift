// Passwords never reach a log line or an error message.

import Jobs
import Testing

@Suite struct SecretsTests {
    @Test(arguments: [
        ("postgresql://infmllm:s3cret@db:5432/infmllm", "postgresql://infmllm:***@db:5432/infmllm"),
        ("amqps://user:p%40ss@mq.example/%2f?cacertfile=/ca.pem", "amqps://user:***@mq.example/%2f?cacertfile=/ca.pem"),
        ("host=db user=w password=s3cret dbname=x", "host=db user=w password=*** dbname=x"),
        ("host=db password = 'with \\' quote' sslmode=verify-full", "host=db password = *** sslmode=verify-full"),
        (
            "postgresql://db/x?user=w&password=s3cret&sslmode=require",
            "postgresql://db/x?user=w&password=***&sslmode=require"
        ),
        ("sslpassword=k3y host=db", "sslpassword=*** host=db"),
        (
            "cannot connect to RabbitMQ at amqp://guest:guest@127.0.0.1:5672/: refused",
            "cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:5672/: refused"
        ),
        ("no credentials at all: http://example.com/a:b@c", "no credentials at all: http://example.com/a:b@c"),
        ("user@host without a password", "user@host without a password"),
        ("invalid AMQP URL amqp://u:pa?ss#w@h/: no host", "invalid AMQP URL amqp://u:***@h/: no host"),
    ])
    func passwordsAreReplaced(_ text: String, _ expected: String) {
        #expect(Secrets.redacted(text) == expected)
    }
}
