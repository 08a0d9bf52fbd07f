/// Device numbers: the kernel keeps `major << 20 | minor` (what the BPF program reads from
/// `s_dev`); stat(2) returns glibc's encoding. Matching an executable needs the kernel's.
public enum DeviceNumber {
    public static func major(user d: UInt64) -> UInt64 { ((d >> 8) & 0xfff) | ((d >> 32) & ~0xfff) }
    public static func minor(user d: UInt64) -> UInt64 { (d & 0xff) | ((d >> 12) & ~0xff) }

    public static func kernel(fromUser d: UInt64) -> UInt64 {
        (major(user: d) << 20) | minor(user: d)
    }

    /// "254:0" for a kernel dev_t.
    public static func text(kernel d: UInt64) -> String { "\(d >> 20):\(d & 0xfffff)" }
}
