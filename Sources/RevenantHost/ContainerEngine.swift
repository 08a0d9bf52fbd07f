import Foundation

/// A restarting container as its engine describes it: name, image, restart policy. Asked of
/// the engine's own CLI (podman keeps the policy in its BoltDB, docker in its daemon), at a fixed
/// path, bounded in time, and only for a container the kernel showed running a respawned program.
public struct ContainerInfo: Sendable, Equatable {
    public var engine: String
    public var id: String
    public var name: String?
    public var image: String?
    public var restartPolicy: String?
    public var restartCount: Int?
    public var engineVersion: String?

    public init(engine: String, id: String, name: String? = nil) {
        self.engine = engine; self.id = id; self.name = name
    }

    /// What stops it for good, with the commands the installed engine has.
    public var remediation: [String] {
        let ref = shellQuote(name ?? id)
        switch engine {
        case "docker":
            return ["docker update --restart=no \(ref)   # the restart policy (\(restartPolicy ?? "?")) brings it back",
                    "docker stop \(ref)"]
        case "podman":
            let major = engineVersion.flatMap { Int($0.split(separator: ".").first ?? "") } ?? 0
            if major >= 5 {
                return ["podman update --restart=no \(ref)   # the restart policy (\(restartPolicy ?? "?")) brings it back",
                        "podman stop \(ref)"]
            }
            return ["podman stop \(ref)   # a stopped container stays stopped until podman-restart.service at boot",
                    "podman rm \(ref)   # podman \(engineVersion ?? "") cannot change a restart policy: recreate it without --restart=\(restartPolicy ?? "…") if still needed"]
        default:
            return ["crictl stop \(shellQuote(id))   # then fix the pod spec: the kubelet recreates it"]
        }
    }
}

public enum ContainerEngine {
    static let binaries = ["podman": ["/usr/bin/podman", "/usr/local/bin/podman"],
                           "docker": ["/usr/bin/docker", "/usr/local/bin/docker"]]

    /// The container's full id and name from its monitor's command line: conmon's `-c ID -n NAME`.
    public static func fromMonitor(_ argv: [String], engine: String, shortID: String) -> ContainerInfo {
        func value(_ flag: String) -> String? { argv.firstIndex(of: flag).flatMap { $0 + 1 < argv.count ? argv[$0 + 1] : nil } }
        let id = value("-c").flatMap { $0.hasPrefix(shortID) ? $0 : nil } ?? value("-id") ?? shortID
        return ContainerInfo(engine: engine, id: id, name: value("-n"))
    }

    /// Fills in what the engine knows; unchanged when it is not installed or does not answer.
    public static func inspect(_ info: ContainerInfo, timeout: Double = 2) -> ContainerInfo {
        guard let bin = binaries[info.engine]?.first(where: { FileManager.default.isExecutableFile(atPath: $0) }),
              let out = run([bin, "container", "inspect", info.id], timeout: timeout),
              let arr = try? JSONSerialization.jsonObject(with: out) as? [[String: Any]], let c = arr.first else { return info }
        var i = info
        let name = (c["Name"] as? String).map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 }
        i.name = name ?? i.name
        i.image = (c["ImageName"] as? String) ?? ((c["Config"] as? [String: Any])?["Image"] as? String)
        i.restartPolicy = ((c["HostConfig"] as? [String: Any])?["RestartPolicy"] as? [String: Any])?["Name"] as? String
        i.restartCount = c["RestartCount"] as? Int
        if let v = run([bin, "--version"], timeout: timeout).flatMap({ String(data: $0, encoding: .utf8) }) {
            // "podman version 4.3.1", "Docker version 20.10.24+dfsg1, build …"
            i.engineVersion = v.split(separator: " ").first { $0.first?.isNumber == true }.map { String($0.prefix { $0 != "," && $0 != "\n" }) }
        }
        return i
    }

    /// Standard output of a command, nil on failure or after `timeout` seconds (then killed).
    static func run(_ argv: [String], timeout: Double) -> Data? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        // The read ends when the engine exits or is killed at the deadline.
        let pid = p.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        watchdog.cancel()
        return p.terminationReason == .exit && p.terminationStatus == 0 ? data : nil
    }
}
