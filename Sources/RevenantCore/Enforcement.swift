import Foundation

/// The enforcement tier actually in force, strongest first. The raw value is the token every
/// output carries (store, audit log, JSON, metrics labels); `label` is for people.
public enum EnforcementTier: String, Sendable, CaseIterable {
    case deny
    case killAtExec = "kill-at-exec"
    case userspaceKill = "userspace-kill"

    public var label: String {
        switch self {
        case .deny: "deny (BPF LSM)"
        case .killAtExec: "kill at exec (bpf_send_signal)"
        case .userspaceKill: "userspace kill (pidfd)"
        }
    }

    /// Either spelling: stores and leaf batches written before the tier had a token hold its label.
    public init?(stored: String) {
        guard let t = EnforcementTier(rawValue: stored) ?? EnforcementTier.allCases.first(where: { $0.label == stored }) else { return nil }
        self = t
    }
}

extension EnforcementTier: Codable {
    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let t = EnforcementTier(stored: s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown enforcement tier \(s)"))
        }
        self = t
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// What enforcement did to one exec: kept as fields in the store, the audit log and every
/// answer, so no reader has to parse the sentence shown to people.
public struct Enforcement: Hashable, Sendable, Codable {
    /// The names of the rules that matched.
    public var rules: [String]
    /// The tier that acted; nil when the rules only audit, or the kernel did not act.
    public var tier: EnforcementTier?
    /// Killed or denied: the image never ran on its own.
    public var blocked: Bool
    /// For people: `killed at exec by the kernel (rule "block-v1")`.
    public var message: String

    public init(rules: [String], tier: EnforcementTier?, blocked: Bool, message: String) {
        self.rules = rules; self.tier = tier; self.blocked = blocked; self.message = message
    }

    /// The rule names as the message lists them: `(rule "a", "b")`.
    public static func ruleList(_ rules: [String]) -> String { rules.map { "\"\($0)\"" }.joined(separator: ", ") }

    /// The form a leaf batch keeps: JSON with stable keys.
    public var encoded: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? enc.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? message
    }

    /// Reads what `encoded` wrote; a store written before enforcement had fields held only
    /// the sentence, which is read once here, by the words the daemon then wrote.
    public init(stored text: String) {
        if text.hasPrefix("{"), let e = try? JSONDecoder().decode(Enforcement.self, from: Data(text.utf8)) {
            self = e
            return
        }
        self.init(legacy: text)
    }

    /// A sentence written before enforcement had fields: `killed at exec by the kernel (rule "a")`.
    public init(legacy text: String) {
        var rules: [String] = []
        if let r = text.range(of: "(rule ") {
            rules = text[r.upperBound...].split(separator: "\"", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        }
        let tier: EnforcementTier? = text.hasPrefix("killed at exec") ? .killAtExec
            : text.hasPrefix("denied") ? .deny
            : text.hasPrefix("killed from userspace") || text.hasPrefix("kill failed") || text.hasPrefix("userspace kill") ? .userspaceKill
            : nil
        self.init(rules: rules, tier: tier, blocked: text.hasPrefix("killed") || text.hasPrefix("denied"), message: text)
    }
}

extension EnforcementTier: CustomStringConvertible { public var description: String { rawValue } }
