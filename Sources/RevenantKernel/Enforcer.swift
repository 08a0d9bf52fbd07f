import CRevenantABI
import CRevenantBPF
import Glibc
import RevenantCore
import RevenantHost

/// Writes compiled policies into the kernel maps without a gap in enforcement.
///
/// Each load uses the half of the 64-bit rule mask the running policy does not: new keys are
/// added next to the old ones, the active slot flips in one 4-byte write, then the old half
/// is cleared.
public final class Enforcer: @unchecked Sendable {
    private let tracer: Tracer
    public private(set) var current: CompiledPolicy?
    /// Each policy executable as installed: its (dev, ino), nil when it did not exist.
    private var resolved: [String: rv_exe_key?] = [:]
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

    /// For tests: the install fails after this many map writes, as a full map or a kernel
    /// error midway would.
    public var failAfterWrites: Int?
    private var writes = 0

    /// Installs `new` (compiled with `nextBitBase`) as one transaction: the target half is
    /// cleared of whatever an earlier failed install left, the keys and the slot are written
    /// and read back, then the active slot flips. Any error before the flip undoes the writes
    /// and the running policy stays; from the flip on, the new policy is the one in force
    /// (`current`), and the old half is cleared as far as the kernel lets (the next install
    /// clears the rest first). Exe paths that do not exist are returned, not fatal.
    @discardableResult
    public func install(_ new: CompiledPolicy) throws(BPFError) -> [String] {
        precondition(new.bitBase == nextBitBase, "compile with Enforcer.nextBitBase")
        let fds = try (0...4).map { i throws(BPFError) -> Int32 in try tracer.mapFD(Int32(i)) }
        writes = 0
        let half: UInt64 = new.bitBase == 0 ? 0xffff_ffff : 0xffff_ffff_0000_0000
        var missing: [String] = []
        var exeKeys: [rv_exe_key: UInt64] = [:]
        var resolvedNow: [String: rv_exe_key?] = [:]
        for (path, mask) in new.exeKeys {
            let k = Enforcer.exeKey(path)
            resolvedNow[path] = k
            guard let k else { missing.append(path); continue }
            exeKeys[k, default: 0] |= mask
        }
        let scriptKeys = new.scriptKeys
        let commKeys = new.commKeys.map { (commKey($0.key), $0.value) }
        let newSlot: UInt32 = current == nil ? 0 : 1 - slot
        do throws(BPFError) {
            // 1. The target half holds nothing: an earlier install may have failed midway.
            try clearHalf(fds[0], half, as: rv_exe_key.self)
            try clearHalf(fds[1], half, as: UInt64.self)
            try clearHalf(fds[2], half, as: rv_comm_key.self)
            // 2. The new keys beside the old ones, read back.
            for (k, m) in exeKeys { var key = k; try merge(fds[0], &key, add: m) }
            for (k, m) in scriptKeys { var key = k; try merge(fds[1], &key, add: m) }
            for (k, m) in commKeys { var key = k; try merge(fds[2], &key, add: m) }
            for (k, m) in exeKeys { var key = k; try expect(fds[0], &key, m, in: half) }
            for (k, m) in scriptKeys { var key = k; try expect(fds[1], &key, m, in: half) }
            for (k, m) in commKeys { var key = k; try expect(fds[2], &key, m, in: half) }
            // 3. The other slot, read back.
            var cfg = rv_policy()
            cfg.need_exe = new.needExe
            cfg.need_script = new.needScript
            cfg.need_comm = new.needComm
            cfg.audit = new.audit
            // Deny rules are killed at exec too: what the LSM tier cannot see, this one does.
            cfg.kill = new.kill | new.deny
            cfg.deny = lsmActive ? new.deny : 0
            Enforcer.store(ScriptHash.filter(scriptKeys.keys), in: &cfg.script_filter, "script")
            Enforcer.store(ExeHash.filter(exeKeys.keys.map { (dev: $0.dev, ino: $0.ino) }), in: &cfg.exe_filter, "exe")
            var s = newSlot
            try write(rv_map_update(fds[3], &s, &cfg), "policy slot \(newSlot)")
            var back = rv_policy()
            guard rv_map_lookup(fds[3], &s, &back) == 0, withUnsafeBytes(of: &back, { b in withUnsafeBytes(of: &cfg) { b.elementsEqual($0) } }) else {
                throw BPFError(stage: .policy, errno: EIO, message: "policy slot \(newSlot) reads back different")
            }
            // 4. The flip: one 4-byte write.
            var zero: UInt32 = 0
            try write(rv_map_update(fds[4], &zero, &s), "active policy slot")
        } catch {
            // Nothing points at the target half: take back what was written there.
            try? clearHalf(fds[0], half, as: rv_exe_key.self)
            try? clearHalf(fds[1], half, as: UInt64.self)
            try? clearHalf(fds[2], half, as: rv_comm_key.self)
            throw error
        }
        let old = current
        let oldSlot = slot
        current = new
        resolved = resolvedNow
        slot = newSlot
        // 5. The old half: ignored by the flipped slot, cleared for tidiness and map room.
        if let old {
            let oldHalf = ~half
            try clearHalf(fds[0], oldHalf, as: rv_exe_key.self)
            try clearHalf(fds[1], oldHalf, as: UInt64.self)
            try clearHalf(fds[2], oldHalf, as: rv_comm_key.self)
            var o = oldSlot
            var empty = rv_policy()
            try check(rv_map_update(fds[3], &o, &empty), "old policy slot (bitBase \(old.bitBase))")
        }
        return missing
    }

    /// Policy executables whose file is no longer the one installed (replaced, created, removed).
    public func replacedExecutables() -> [String] {
        resolved.filter { Enforcer.exeKey($0.key) != $0.value }.map(\.key).sorted()
    }

    /// The kernel's (dev, ino) key of an executable path; nil when it does not exist.
    static func exeKey(_ path: String) -> rv_exe_key? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        // The kernel's dev_t is major << 20 | minor; glibc's st_dev packs them differently.
        return rv_exe_key(dev: DeviceNumber.kernel(fromUser: UInt64(st.st_dev)), ino: UInt64(st.st_ino))
    }

    /// Clears `half` of every value in a key map (a key left with no bits is deleted).
    private func clearHalf<K: BitwiseCopyable>(_ fd: Int32, _ half: UInt64, as: K.Type) throws(BPFError) {
        var keys: [K] = []
        var cur: K? = nil
        while true {
            let k = withUnsafeTemporaryAllocation(of: K.self, capacity: 1) { next -> K? in
                let rc: Int32 = if var c = cur { rv_map_next_key(fd, &c, next.baseAddress!) } else { rv_map_next_key(fd, nil, next.baseAddress!) }
                return rc == 0 ? next[0] : nil
            }
            guard let k else { break }
            keys.append(k)
            cur = k
        }
        for var k in keys { try clear(fd, &k, half: half) }
    }

    private func expect<K: BitwiseCopyable>(_ fd: Int32, _ key: inout K, _ mask: UInt64, in half: UInt64) throws(BPFError) {
        var v: UInt64 = 0
        guard rv_map_lookup(fd, &key, &v) == 0, v & half == mask & half else {
            throw BPFError(stage: .policy, errno: EIO, message: "a policy key reads back different")
        }
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
        try write(rv_map_update(fd, &key, &v), "policy key")
    }

    private func clear<K: BitwiseCopyable>(_ fd: Int32, _ key: inout K, half: UInt64) throws(BPFError) {
        var v: UInt64 = 0
        guard rv_map_lookup(fd, &key, &v) == 0 else { return }
        v &= ~half
        if v == 0 { _ = rv_map_delete(fd, &key) } else { try check(rv_map_update(fd, &key, &v), "policy key") }
    }

    /// A write of the transaction: counted for `failAfterWrites`.
    private func write(_ rc: Int32, _ what: String) throws(BPFError) {
        writes += 1
        if let n = failAfterWrites, writes > n { throw BPFError(stage: .policy, errno: ENOSPC, message: "writing \(what) (injected failure)") }
        try check(rc, what)
    }

    private func check(_ rc: Int32, _ what: String) throws(BPFError) {
        if rc != 0 { throw BPFError(stage: .policy, errno: -rc, message: "writing \(what)") }
    }
}

extension rv_exe_key: @retroactive Hashable, @retroactive Equatable {
    public static func == (a: rv_exe_key, b: rv_exe_key) -> Bool { a.dev == b.dev && a.ino == b.ino }
    public func hash(into h: inout Hasher) { h.combine(dev); h.combine(ino) }
}
