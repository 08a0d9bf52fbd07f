import Testing
@testable import RevenantCore

@Suite struct VisibleTests {
    @Test func controlsAreShownNotObeyed() {
        #expect(Visible.escape("a\u{1b}]0;pwned\u{07}b") == "a\\e]0;pwned\\x07b")
        #expect(Visible.escape("x\nFORGED y") == "x\\nFORGED y")
        #expect(Visible.escape("\u{202e}txt.exe") == "\\u{202e}txt.exe")
        #expect(Visible.escape("\u{9b}31m") == "\\x9b31m")
        #expect(Visible.escape("plain /opt/w.py --id 3 ünï") == "plain /opt/w.py --id 3 ünï")
    }

    @Test func csvCellsAreNotFormulas() {
        for bad in ["=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            #expect(Visible.csvCell(bad) == "'" + bad)
        }
        #expect(Visible.csvCell("python3") == "python3")
        #expect(Visible.csvCell("") == "")
    }
}

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

@Suite struct RailTests {
    let ctx = SafetyContext(pid1Exe: "/sbin/init", selfExe: "/usr/bin/revenant")

    func refused(_ m: PolicyMatch) -> String? {
        PolicyCompiler.danger(PolicyRule(name: "r", match: m, action: .kill), context: ctx)
    }

    @Test func optionsAreNotScripts() {
        #expect(refused(.init(script: "-c"))?.contains("every `sh -c`") == true)
        #expect(refused(.init(script: "-R")) != nil)
        #expect(refused(.init(script: "/opt/w.py")) == nil)
    }

    @Test func hostProgramsAreProtectedByNameAndByFile() {
        for name in ["sshd-session", "systemd-logind", "agetty", "login", "su", "sudo", "kubelet", "containerd", "dockerd"] {
            #expect(refused(.init(exe: "/usr/sbin/" + name)) != nil, "\(name)")
        }
        var c = ctx
        let key = SafetyContext.FileKey(device: 8, inode: 42)
        c.protectedFiles = [key: "/usr/sbin/sshd"]
        c.fileKey = { $0 == "/opt/innocent-name" ? key : nil }
        let why = PolicyCompiler.danger(PolicyRule(name: "r", match: .init(exe: "/opt/innocent-name"), action: .kill), context: c)
        #expect(why?.contains("same file as /usr/sbin/sshd") == true)
    }
}
