import Testing
@testable import RevenantCore

@Suite struct SecretCatalogueTests {
    let r = Redactor()

    /// Each form with its secret: after redaction no word of the output holds the secret.
    @Test(arguments: [
        (["app", "--db-password=hunter2"], "hunter2"),
        (["env", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI"], "wJalrXUtnFEMI"),
        (["env", "PGPASSWORD=pg-secret"], "pg-secret"),
        (["/usr/bin/mysql", "-uroot", "-pS3cretPw", "db"], "S3cretPw"),
        (["curl", "https://alice:p4ss@example.com/x"], "p4ss"),
        (["curl", "-H", "Authorization: Bearer eyJhbGciOi"], "eyJhbGciOi"),
        (["curl", "-H", "authorization: bearer lowercase-tok"], "lowercase-tok"),
        (["app", "--token", "tok-123"], "tok-123"),
        (["app", "--Token=MiXeD"], "MiXeD"),
        (["java", "-jar", "a.jar", "jdbc:postgresql://h/db?user=u&password=jdbcpw"], "jdbcpw"),
        (["worker", "redis://:redispw@cache:6379/0"], "redispw"),
        (["worker", "amqp://guest:amqppw@mq:5672/"], "amqppw"),
        (["sh", "-c", "app --api-key=k-999 && curl https://u:inner@h/"], "k-999"),
        (["sh", "-c", "app --api-key=k-999 && curl https://u:inner@h/"], "inner"),
        (["tool", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"], "MIIEpAIBAAKCAQEA"),
    ])
    func hidden(_ argv: [String], _ secret: String) {
        let out = r.apply(argv)
        #expect(!out.joined(separator: " ").contains(secret), "\(out)")
    }

    @Test func ordinaryCommandLinesAreUntouched() {
        for argv in [["python3", "/opt/w.py", "--id", "3"], ["mysql", "--port", "3306"], ["curl", "https://example.com/a:b"],
                     ["ls", "-p"], ["train", "--tokenizer=bert-base"]] {
            #expect(r.redacted(argv) == nil, "\(argv)")
        }
    }
}
