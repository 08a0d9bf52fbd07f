import CRevenantABI
import CRevenantBPF
import Glibc
import RevenantCore

/// Writes compiled policies into the kernel maps without a gap in enforcement.
///
/// Each load uses the half of the 64-bit rule mask the running policy does not: new keys are
/// added next to the old ones, the active slot flips in one 4-byte write, then the old half
/// is cleared.
public final class Enforcer: @unchecked Sendable {
    private let tracer: Tracer
    public private(set) var current: CompiledPolicy?
    private var currentExeKeys: [rv_exe_key: UInt64] = [:]
    private var slot: UInt32 = 0
    /// Whether deny rules are refused by the LSM program (else they are killed at exec).
    public let lsmActive: Bool

    public init(tracer: Tracer, lsmActive: Bool) {
        self.tracer = tracer
        self.lsmActive = lsmActive
    }

    /// The half the next policy must be compiled for.
    public var nextBitBase: Int { current == nil ? 0 : (current!.bitBase == 0 ? 32 : 0) }

    public func tier(for action: PolicyAction) -> EnforcementTier? {
        switch action {
        case .audit: return nil
        case .kill: return .killAtExec
        case .deny: return lsmActive ? .deny : .killAtExec
        }
    }

    /// Installs `new` (compiled with `nextBitBase`). Exe paths that do not exist are returned,
    /// not fatal: the rule still matches by script or comm where it has them.
    @discardableResult
    public func install(_ new: CompiledPolicy) throws(BPFError) -> [String] {
        precondition(new.bitBase == nextBitBase, "compile with Enforcer.nextBitBase")
        let fds = try (0...4).map { i throws(BPFError) -> Int32 in try tracer.mapFD(Int32(i)) }
        var missing: [String] = []
        var exeKeys: [rv_exe_key: UInt64] = [:]
        for (path, mask) in new.exeKeys {
            var st = stat()
            guard stat(path, &st) == 0 else { missing.append(path); continue }
            // The kernel's dev_t is major << 20 | minor; glibc's st_dev packs them differently.
            let kdev = DeviceNumber.kernel(fromUser: UInt64(st.st_dev))
            exeKeys[rv_exe_key(dev: kdev, ino: UInt64(st.st_ino)), default: 0] |= mask
        }
        // 1. Add the new keys beside the old ones.
        for (k, m) in exeKeys { var key = k; try merge(fds[0], &key, add: m) }
        for (k, m) in new.scriptKeys { var key = k; try merge(fds[1], &key, add: m) }
        for (c, m) in new.commKeys { var key = commKey(c); try merge(fds[2], &key, add: m) }
        // 2. Fill the other slot, 3. flip to it.
        let newSlot: UInt32 = current == nil ? 0 : 1 - slot
        var cfg = rv_policy()
        cfg.need_exe = new.needExe
        cfg.need_script = new.needScript
        cfg.need_comm = new.needComm
        cfg.audit = new.audit
        // Deny rules are killed at exec too: what the LSM tier cannot see, this one does.
        cfg.kill = new.kill | new.deny
        cfg.deny = lsmActive ? new.deny : 0
        Enforcer.store(ScriptHash.filter(new.scriptKeys.keys), in: &cfg.script_filter, "script")
        Enforcer.store(ExeHash.filter(exeKeys.keys.map { (dev: $0.dev, ino: $0.ino) }), in: &cfg.exe_filter, "exe")
        var s = newSlot
        try check(rv_map_update(fds[3], &s, &cfg), "policy slot \(newSlot)")
        var zero: UInt32 = 0
        try check(rv_map_update(fds[4], &zero, &s), "active policy slot")
        // 4. Clear the old half.
        if let old = current {
            let oldHalf: UInt64 = old.bitBase == 0 ? 0xffff_ffff : 0xffff_ffff_0000_0000
            for (k, _) in currentExeKeys { var key = k; try clear(fds[0], &key, half: oldHalf) }
            for (k, _) in old.scriptKeys { var key = k; try clear(fds[1], &key, half: oldHalf) }
            for (c, _) in old.commKeys { var key = commKey(c); try clear(fds[2], &key, half: oldHalf) }
            var oldSlot = slot
            var empty = rv_policy()
            try check(rv_map_update(fds[3], &oldSlot, &empty), "old policy slot")
        }
        current = new
        currentExeKeys = exeKeys
        slot = newSlot
        return missing
    }

    /// A filter's words into the policy slot's fixed C array of them.
    private static func store<T>(_ words: [UInt64], in field: inout T, _ what: String) {
        withUnsafeMutableBytes(of: &field) { raw in
            precondition(raw.count == words.count * 8, "\(what) filter size: the ABI and its hash disagree")
            for (i, w) in words.enumerated() { raw.storeBytes(of: w, toByteOffset: i * 8, as: UInt64.self) }
        }
    }

    private func commKey(_ c: String) -> rv_comm_key {
        var k = rv_comm_key()
        withUnsafeMutableBytes(of: &k.comm) { raw in
            let b = Array(c.utf8.prefix(15))
            raw.copyBytes(from: b)
        }
        return k
    }

    private func merge<K: BitwiseCopyable>(_ fd: Int32, _ key: inout K, add: UInt64) throws(BPFError) {
        var v: UInt64 = 0
        if rv_map_lookup(fd, &key, &v) != 0 { v = 0 }
        v |= add
        try check(rv_map_update(fd, &key, &v), "policy key")
    }

    private func clear<K: BitwiseCopyable>(_ fd: Int32, _ key: inout K, half: UInt64) throws(BPFError) {
        var v: UInt64 = 0
        guard rv_map_lookup(fd, &key, &v) == 0 else { return }
        v &= ~half
        if v == 0 { _ = rv_map_delete(fd, &key) } else { try check(rv_map_update(fd, &key, &v), "policy key") }
    }

    private func check(_ rc: Int32, _ what: String) throws(BPFError) {
        if rc != 0 { throw BPFError(stage: .policy, errno: -rc, message: "writing \(what)") }
    }
}

extension rv_exe_key: @retroactive Hashable, @retroactive Equatable {
    public static func == (a: rv_exe_key, b: rv_exe_key) -> Bool { a.dev == b.dev && a.ino == b.ino }
    public func hash(into h: inout Hasher) { h.combine(dev); h.combine(ino) }
}
