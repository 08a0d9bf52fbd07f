import Testing
@testable import RevenantCore

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
