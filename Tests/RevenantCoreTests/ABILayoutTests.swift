import CRevenantABI
import Testing

/// The BPF program and Swift share revenant_abi.h; these pin its layout so an edit that
/// would desynchronise the two (or a padding change) fails here first.
@Suite struct ABILayoutTests {
    @Test func sizes() {
        #expect(MemoryLayout<rv_ident>.size == 16)
        #expect(MemoryLayout<rv_header>.size == 32)
        #expect(MemoryLayout<rv_fork_event>.size == 56)
        #expect(MemoryLayout<rv_exit_event>.size == 72)
        #expect(MemoryLayout<rv_exec_event>.size == 160 + Int(RV_EXEC_DATA_BYTES))
        #expect(Int(RV_EXEC_DATA_BYTES) == 1024 + Int(RV_ARGV_BYTES))
        #expect(MemoryLayout<rv_policy>.size == 48 + 8 * Int(RV_SCRIPT_FILTER_WORDS + RV_EXE_FILTER_WORDS))
        #expect(MemoryLayout<rv_policy>.offset(of: \.script_filter) == 48)
        #expect(MemoryLayout<rv_policy>.offset(of: \.exe_filter) == 48 + 8 * Int(RV_SCRIPT_FILTER_WORDS))
        #expect(MemoryLayout<rv_exe_key>.size == 16)
        #expect(MemoryLayout<rv_proc>.size == 40)
    }

    @Test func headerOffsets() {
        #expect(MemoryLayout<rv_header>.offset(of: \.type) == 0)
        #expect(MemoryLayout<rv_header>.offset(of: \.size) == 4)
        #expect(MemoryLayout<rv_header>.offset(of: \.time_ns) == 8)
        #expect(MemoryLayout<rv_header>.offset(of: \.proc) == 16)
        #expect(MemoryLayout<rv_ident>.offset(of: \.start_ns) == 8)
    }

    @Test func eventOffsets() {
        #expect(MemoryLayout<rv_fork_event>.offset(of: \.parent) == 32)
        #expect(MemoryLayout<rv_fork_event>.offset(of: \.parent_thread) == 48)
        #expect(MemoryLayout<rv_exit_event>.offset(of: \.real_parent) == 48)
        #expect(MemoryLayout<rv_exit_event>.offset(of: \.exit_code) == 64)
        typealias E = rv_exec_event
        #expect(MemoryLayout<E>.offset(of: \.parent) == 32)
        #expect(MemoryLayout<E>.offset(of: \.real_parent) == 48)
        #expect(MemoryLayout<E>.offset(of: \.exe_dev) == 64)
        #expect(MemoryLayout<E>.offset(of: \.exe_ino) == 72)
        #expect(MemoryLayout<E>.offset(of: \.cgroup_id) == 80)
        #expect(MemoryLayout<E>.offset(of: \.old_pid) == 88)
        #expect(MemoryLayout<E>.offset(of: \.flags) == 108)
        #expect(MemoryLayout<E>.offset(of: \.argc) == 112)
        #expect(MemoryLayout<E>.offset(of: \.argv_len) == 116)
        #expect(MemoryLayout<E>.offset(of: \.matched) == 120)
        #expect(MemoryLayout<E>.offset(of: \.action) == 128)
        #expect(MemoryLayout<E>.offset(of: \.comm) == 136)
        #expect(MemoryLayout<E>.offset(of: \.filename_len) == 152)
        #expect(MemoryLayout<E>.offset(of: \.interp_len) == 154)
        #expect(MemoryLayout<E>.offset(of: \.cwd_len) == 156)
        #expect(MemoryLayout<E>.offset(of: \.cgroup_len) == 158)
        #expect(MemoryLayout<E>.offset(of: \.data) == 160)
    }
}
