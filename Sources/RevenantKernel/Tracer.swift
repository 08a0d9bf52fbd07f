import CRevenantBPF
import Foundation
import Glibc
import RevenantCore
import RevenantHost
import Synchronization

/// What the reader thread hands to Swift concurrency.
public enum TraceItem: Sendable {
    case event(Event)
    /// A record that could not be decoded: reported, never fatal.
    case malformed(DecodeError)
}

/// Kernel-side counters, summed over CPUs.
public struct TraceCounters: Sendable, Equatable {
    public var ringbufFull: UInt64
    public var procMapFull: UInt64
    public var events: UInt64

    public static let zero = TraceCounters(ringbufFull: 0, procMapFull: 0, events: 0)

    public init(ringbufFull: UInt64, procMapFull: UInt64, events: UInt64) {
        self.ringbufFull = ringbufFull; self.procMapFull = procMapFull; self.events = events
    }
}

/// Loads the BPF program, attaches it, and reads its ring buffer on a dedicated thread.
public final class Tracer: @unchecked Sendable {
    public struct Options: Sendable {
        /// Ring buffer bytes (power of two); README "Bounds" says how many records fit.
        public var ringbufBytes: UInt32 = 8 << 20
        /// Pending bytes that trigger a reader wake-up; below it the reader polls.
        public var wakeupBytes: UInt64 = 1 << 20
        /// How often the reader drains the ring when not woken.
        public var pollMs: Int32 = 20
        /// Load the deny program too (where BPF LSM is active); failure only disables that tier.
        public var tryLSM = false
        /// Fork records only when a later record needs them (see common.bpf.h): a process that
        /// execs is first seen at its exec. `unannounced()` lists live ones not yet seen.
        public var lazyForks = false
        /// No reader thread and no streams: the owner drains with `drain(timeoutMs:_:)` on its own
        /// thread (no hop between threads per drain), and calls `close()` when done.
        public var manual = false
        public init() {}
    }

    public let events: AsyncStream<TraceItem>
    private let continuation: AsyncStream<TraceItem>.Continuation
    /// Manual mode: where the current drain hands each record, and what it threw; touched by
    /// the draining thread only (so no runtime exclusivity check on each record).
    @exclusivity(unchecked) private var sink: ((UnsafeRawBufferPointer, inout EventDecoder.Memo) throws -> Void)?
    private var sinkError: (any Error)?
    /// Touched by the one thread that reads the ring (the reader thread, or the drainer): no
    /// runtime exclusivity check on each record's access.
    @exclusivity(unchecked) private var memo = EventDecoder.Memo()
    private var handle: OpaquePointer?
    /// Guards `handle` between map reads (any thread) and destruction in `stop()`.
    private let handleLock = NSLock()
    private let stopping = Atomic<Bool>(false)
    private var thread: pthread_t?
    private let options: Options
    /// The deny program (lsm/bprm_check_security) is loaded and attached.
    public private(set) var lsmActive = false
    /// The deny tier also matches argv elements (syscall-entry capture attached).
    public private(set) var lsmSeesArgv = false
    /// Why it is not, when it is not.
    public private(set) var lsmStatus = "not attempted"

    /// Opens, loads and attaches; events start flowing into `events` at once.
    public init(options: Options = Options()) throws(BPFError) {
        self.options = options
        (events, continuation) = AsyncStream.makeStream(of: TraceItem.self, bufferingPolicy: .unbounded)
        // Manual mode delivers through `drain`: the stream ends at once.
        if options.manual { continuation.finish() }
        var opts = rv_bpf_options(ringbuf_bytes: options.ringbufBytes, wakeup_bytes: options.wakeupBytes,
                                  try_lsm: options.tryLSM ? 1 : 0, lazy_forks: options.lazyForks ? 1 : 0)
        var stage: Int32 = 0
        var log = [CChar](repeating: 0, count: 8192)
        var h: OpaquePointer?
        let ctx = Unmanaged.passUnretained(self).toOpaque()
        let rc = rv_bpf_start(&h, &opts, Tracer.onRecord, ctx, &stage, &log, UInt(log.count))
        guard rc == 0, let h else {
            let st: BPFError.Stage = switch stage {
            case Int32(RV_STAGE_OPEN.rawValue): .open
            case Int32(RV_STAGE_LOAD.rawValue): .load
            case Int32(RV_STAGE_ATTACH.rawValue): .attach
            default: .ringbuf
            }
            throw BPFError(stage: st, errno: -rc, message: String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        handle = h
        if options.tryLSM {
            var st: Int32 = 0
            var lsmLog = [CChar](repeating: 0, count: 2048)
            let rc = rv_bpf_lsm_status(h, &st, &lsmLog, UInt(lsmLog.count))
            lsmActive = rc == 0
            lsmSeesArgv = rc == 0 && rv_bpf_lsm_argv(h) != 0
            let text = String(decoding: lsmLog.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            lsmStatus = rc == 0 ? "attached" : "\(BPFError(stage: st == Int32(RV_STAGE_ATTACH.rawValue) ? .attach : .load, errno: -rc, message: text))"
        }
        if options.manual {
            wakeFD = rv_wake_fd()   // on failure (-errno) drains just wait out their timeout
        } else {
            startThread()
        }
    }

    /// Manual mode: written by `wake()` so a drain waiting on the ring returns at once.
    private var wakeFD: Int32 = -1

    /// Manual mode: ends the current or next `drain` wait now (a stop or a reload). Any thread.
    public func wake() {
        guard wakeFD >= 0 else { return }
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    deinit {
        stop()
        close()
        // Closed only here: a late wake() from a signal handler must not write to a reused fd.
        if wakeFD >= 0 { Glibc.close(wakeFD) }
    }

    private static let onRecord: rv_event_fn = { ctx, data, size in
        let me = Unmanaged<Tracer>.fromOpaque(ctx!).takeUnretainedValue()
        let buf = UnsafeRawBufferPointer(start: data, count: Int(size))
        guard me.options.manual else { me.continuation.yield(Tracer.item(buf, memo: &me.memo)); return 0 }
        do {
            try me.sink?(buf, &me.memo)
        } catch {
            // Stops the ring's consume loop here: the drain rethrows it.
            me.sinkError = error
            return -1
        }
        return 0
    }

    private func startThread() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var t = pthread_t()
        pthread_create(&t, nil, { arg in
            let me = Unmanaged<Tracer>.fromOpaque(arg!).takeRetainedValue()
            me.loop()
            return nil
        }, box)
        thread = t
    }

    private func loop() {
        guard let h = handle else { return }
        while !stopping.load(ordering: .acquiring) {
            let n = rv_bpf_poll(h, options.pollMs)
            if n < 0 && n != -EINTR {
                continuation.finish()
                return
            }
        }
        // Drain what is left so nothing submitted before stop is lost.
        _ = rv_bpf_poll(h, 0)
        continuation.finish()
    }

    private static func item(_ buf: UnsafeRawBufferPointer, memo: inout EventDecoder.Memo) -> TraceItem {
        do throws(DecodeError) {
            return .event(try EventDecoder.decode(buf, memo: &memo))
        } catch {
            return .malformed(error)
        }
    }

    /// Manual mode: waits up to `timeoutMs` for records and hands each to `body` as the ring
    /// yields it, on this thread (no array in between: each exec record was moved three more
    /// times through one). An error `body` throws ends the drain and is rethrown. Returns false
    /// once the tracer is stopping and the ring is empty, or the ring failed; call `close()` then.
    public func drain(timeoutMs: Int32, _ body: (consuming TraceItem) throws -> Void) throws -> Bool {
        try drainRecords(timeoutMs: timeoutMs) { buf, memo in try body(Tracer.item(buf, memo: &memo)) }
    }

    /// `drain(timeoutMs:_:)` with each record undecoded: its bytes (valid for the call) and the
    /// tracer's decoder memo, for `EventDecoder.kind`, `exec(_:memo:)`, `exit(_:)` or `decode`.
    package func drainRecords(timeoutMs: Int32, _ body: (UnsafeRawBufferPointer, inout EventDecoder.Memo) throws -> Void) throws -> Bool {
        precondition(options.manual, "drain(timeoutMs:_:) and drainRecords are for manual mode")
        guard let h = handle else { return false }
        let last = stopping.load(ordering: .acquiring)
        let n = withoutActuallyEscaping(body) { b in
            sink = b
            defer { sink = nil }
            return rv_bpf_wait(h, last ? 0 : timeoutMs, wakeFD)
        }
        if let e = sinkError {
            sinkError = nil
            throw e
        }
        if n < 0 && n != -EINTR { return false }
        return !last || n > 0
    }

    /// Kernel counters: events lost to a full ring, processes the kernel map could not hold.
    public func counters() throws(BPFError) -> TraceCounters {
        handleLock.lock()
        defer { handleLock.unlock() }
        guard let h = handle else { throw BPFError(stage: .counters, errno: EBADF, message: "tracer stopped") }
        var v = [UInt64](repeating: 0, count: Int(RV_CNT__MAX.rawValue))
        let rc = rv_bpf_counters(h, &v)
        guard rc == 0 else { throw BPFError(stage: .counters, errno: -rc, message: "") }
        return TraceCounters(
            ringbufFull: v[Int(RV_CNT_RINGBUF_FULL.rawValue)],
            procMapFull: v[Int(RV_CNT_PROCMAP_FULL.rawValue)],
            events: v[Int(RV_CNT_EVENTS.rawValue)])
    }

    /// Bytes in the ring buffer not yet read, and its size; nil once stopped.
    public func ringFill() -> (fill: Int, size: Int)? {
        handleLock.lock()
        defer { handleLock.unlock() }
        guard let h = handle else { return nil }
        var size: UInt = 0
        let fill = rv_bpf_ring_fill(h, &size)
        return fill < 0 ? nil : (Int(fill), Int(size))
    }

    /// Lazy forks: live processes no record has named yet (forked, neither exec'd nor exited),
    /// as their fork events, oldest first. At most `limit` (default: all the map can hold).
    public func unannounced(limit: Int = Int(RV_PROC_SLOTS) + Int(RV_MAX_PROCS)) -> [ForkEvent] {
        handleLock.lock()
        defer { handleLock.unlock() }
        guard let h = handle else { return [] }
        var buf = [rv_proc](repeating: rv_proc(), count: limit)
        let n = rv_bpf_unannounced(h, &buf, limit)
        return buf.prefix(max(0, n)).map { p in
            let me = p.`self`
            return ForkEvent(time: me.start_ns, process: Identity(pid: Int32(bitPattern: me.tgid), startNs: me.start_ns),
                             parent: Identity(pid: Int32(bitPattern: p.parent.tgid), startNs: p.parent.start_ns),
                             parentThread: Int32(bitPattern: p.parent_thread))
        }.sorted { $0.time < $1.time }
    }

    /// A policy map's descriptor (enum rv_map).
    public func mapFD(_ map: Int32) throws(BPFError) -> Int32 {
        handleLock.lock()
        defer { handleLock.unlock() }
        guard let h = handle else { throw BPFError(stage: .policy, errno: EBADF, message: "tracer stopped") }
        let fd = rv_bpf_map_fd(h, map)
        guard fd >= 0 else { throw BPFError(stage: .policy, errno: EBADF, message: "no map \(map)") }
        return fd
    }

    /// Slots of the kernel's per-process array: tgids equal modulo this share one.
    public static let processSlots = Int(RV_PROC_SLOTS)


    /// Stops the reader (after a final drain) and detaches. Idempotent. In manual mode it only
    /// marks the tracer stopping (safe from any thread, e.g. a signal handler during start-up):
    /// the owner's loop sees it and calls `close()`.
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if options.manual {
            wake()
            return
        }
        if let t = thread {
            if pthread_equal(t, pthread_self()) == 0 { pthread_join(t, nil) }
            thread = nil
        }
        close()
    }

    /// Pins the attached programs under `dir` (a bpffs directory, mounted at /sys/fs/bpf when
    /// missing) so that kill at exec outlives this process; an earlier daemon's pins there
    /// are replaced only once these programs are attached.
    public func pin(_ dir: String) throws(BPFError) {
        try Tracer.mountBPFFS(under: dir)
        handleLock.lock()
        defer { handleLock.unlock() }
        guard let h = handle else { return }
        let rc = rv_bpf_pin(h, dir)
        if rc < 0 { throw BPFError(stage: .pin, errno: -rc, message: "pinning under \(dir)") }
    }

    /// Removes the pins under `dir`: programs only they kept attached detach. Returns how many.
    @discardableResult
    public static func unpin(_ dir: String) -> Int { Int(rv_bpf_unpin(dir)) }

    /// How many programs are pinned under `dir`.
    public static func pinned(_ dir: String) -> Int { Int(rv_bpf_pinned(dir)) }

    public static let defaultPinDir = "/sys/fs/bpf/revenant"

    /// Mounts a bpffs at /sys/fs/bpf when `dir` is not on one already.
    static func mountBPFFS(under dir: String) throws(BPFError) {
        let parent = (dir as NSString).deletingLastPathComponent
        if rv_is_bpffs(parent) != 0 { return }
        guard parent == "/sys/fs/bpf" else {
            throw BPFError(stage: .pin, errno: EINVAL, message: "\(parent) is not on a bpf filesystem: pin under /sys/fs/bpf")
        }
        let rc = rv_mount_bpffs(parent)
        if rc < 0 { throw BPFError(stage: .pin, errno: -rc, message: "mount -t bpf bpf \(parent)") }
    }

    /// Detaches the programs and frees the ring. Idempotent.
    public func close() {
        stopping.store(true, ordering: .releasing)
        handleLock.lock()
        if let h = handle {
            rv_bpf_stop(h)
            handle = nil
        }
        handleLock.unlock()
        continuation.finish()
    }
}
