import Foundation
import RevenantCore

/// This host as the audit records name it.
public enum HostIdentity {
    /// This host, as OCSF records name it: read once.
    public static let device: AuditEvent.Device = {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let id = (try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return AuditEvent.Device(hostname: String(cString: name), machineID: id?.isEmpty == false ? id : nil, kernel: release)
    }()
}
