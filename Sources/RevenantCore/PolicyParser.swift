import Yams

/// Parses the YAML policy, naming file, line and column of every problem.
///
/// ```yaml
/// rules:
///   - name: block-v1-worker
///     match:
///       exe: /usr/bin/python3.11
///       script: /opt/ai-video-codec/workers/training_worker.py
///     action: kill          # audit | kill | deny
///     kill_existing: true
/// ```
public enum PolicyParser {
    static let topKeys = ["rules", "version"]
    static let ruleKeys = ["name", "match", "action", "kill_existing", "allow_dangerous"]
    static let matchKeys = ["exe", "script", "comm", "argv"]

    public static func parse(_ text: String, file: String) throws(PolicyError) -> Policy {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let e as YamlError {
            throw yamlError(e, file: file)
        } catch {
            throw PolicyError(file: file, line: 0, column: 0, message: "\(error)")
        }
        guard let root else {
            throw PolicyError(file: file, line: 1, column: 1, message: "empty policy (expected a mapping with `rules:`)")
        }
        guard let top = root.mapping else {
            throw err(file, root, "the policy must be a mapping with `rules:` (a list of rules)")
        }
        try checkKeys(top, allowed: topKeys, what: "top-level key", file: file)
        if let v = top["version"], v.int != 1 {
            throw err(file, v, "unsupported version \(v.string ?? "?") (expected 1)")
        }
        guard let rulesNode = top["rules"] else {
            throw err(file, root, "missing `rules:` (a list of rules)")
        }
        guard let seq = rulesNode.sequence else {
            if rulesNode.null != nil { return Policy(file: file, rules: []) }
            throw err(file, rulesNode, "`rules:` must be a list (each item starts with `- name:`)")
        }
        var rules: [PolicyRule] = []
        var names: [String: Int] = [:]
        for node in seq {
            let rule = try parseRule(node, file: file)
            if let first = names[rule.name] {
                throw err(file, node, "duplicate rule name \"\(rule.name)\" (first at line \(first)): names must be unique")
            }
            names[rule.name] = rule.line
            rules.append(rule)
        }
        if rules.count > Policy.maxRules {
            throw err(file, rulesNode, "\(rules.count) rules: at most \(Policy.maxRules) fit in the kernel maps; merge rules")
        }
        return Policy(file: file, rules: rules)
    }

    static func parseRule(_ node: Node, file: String) throws(PolicyError) -> PolicyRule {
        guard let m = node.mapping else { throw err(file, node, "a rule must be a mapping with name, match and action") }
        try checkKeys(m, allowed: ruleKeys, what: "rule key", file: file)
        let name = try string(m, "name", file: file, in: node, required: true)!
        guard !name.isEmpty else { throw err(file, node, "empty rule name") }
        guard let matchNode = m["match"] else {
            throw err(file, node, "rule \"\(name)\" has no `match:` (give at least one of exe, script, comm, argv)")
        }
        guard let mm = matchNode.mapping else { throw err(file, matchNode, "`match:` must be a mapping of exe, script, comm, argv") }
        try checkKeys(mm, allowed: matchKeys, what: "match key", file: file)
        var match = PolicyMatch()
        match.exe = try string(mm, "exe", file: file, in: matchNode)
        match.script = try string(mm, "script", file: file, in: matchNode)
        match.comm = try string(mm, "comm", file: file, in: matchNode)
        match.argv = try string(mm, "argv", file: file, in: matchNode)
        if match.exe == nil && match.script == nil && match.comm == nil && match.argv == nil {
            throw err(file, matchNode, "rule \"\(name)\": `match:` is empty (give at least one of exe, script, comm, argv)")
        }
        if let exe = match.exe, !exe.hasPrefix("/") {
            throw err(file, mm["exe"]!, "exe \"\(exe)\" must be an absolute path (e.g. /usr/bin/python3.11)")
        }
        if let comm = match.comm, comm.utf8.count > 15 || comm.isEmpty {
            throw err(file, mm["comm"]!, "comm \"\(comm)\" must be 1 to 15 bytes: the kernel keeps 15")
        }
        if let s = match.script, s.isEmpty || (s.contains("/") && !s.hasPrefix("/")) {
            throw err(file, mm["script"]!, "script \"\(s)\" must be an absolute path or a bare file name")
        }
        guard let actionNode = m["action"] else {
            throw err(file, node, "rule \"\(name)\" has no `action:` (expected audit, kill, deny)")
        }
        guard let a = actionNode.string, let action = PolicyAction(rawValue: a) else {
            throw err(file, actionNode, "unknown action \"\(actionNode.string ?? "?")\" (expected audit, kill, deny)")
        }
        if action != .audit, match.argv != nil {
            throw err(file, mm["argv"]!, "rule \"\(name)\": an argv glob is checked in userspace, after the exec: it can only audit; match on exe, script or comm to \(action)")
        }
        if action != .audit, match.exe == nil, match.script == nil, match.comm == nil {
            throw err(file, matchNode, "rule \"\(name)\" needs exe, script or comm to \(action)")
        }
        let killExisting = try bool(m, "kill_existing", file: file)
        let dangerous = try bool(m, "allow_dangerous", file: file)
        return PolicyRule(name: name, match: match, action: action, killExisting: killExisting,
                          allowDangerous: dangerous, line: (node.mark?.line ?? 0))
    }

    static func string(_ m: Node.Mapping, _ key: String, file: String, in parent: Node, required: Bool = false) throws(PolicyError) -> String? {
        guard let n = m[key] else {
            if required { throw err(file, parent, "missing `\(key):`") }
            return nil
        }
        guard let s = n.scalar?.string else { throw err(file, n, "`\(key):` must be a string") }
        return s
    }

    static func bool(_ m: Node.Mapping, _ key: String, file: String) throws(PolicyError) -> Bool {
        guard let n = m[key] else { return false }
        guard let b = n.bool else { throw err(file, n, "`\(key):` must be true or false, not \"\(n.string ?? "?")\"") }
        return b
    }

    static func checkKeys(_ m: Node.Mapping, allowed: [String], what: String, file: String) throws(PolicyError) {
        for (k, _) in m {
            guard let key = k.string else { throw err(file, k, "\(what) must be a string") }
            if !allowed.contains(key) {
                let hint = closest(key, allowed).map { " (did you mean `\($0)`?)" } ?? " (expected \(allowed.joined(separator: ", ")))"
                throw err(file, k, "unknown \(what) `\(key)`\(hint)")
            }
        }
    }

    static func closest(_ word: String, _ options: [String]) -> String? {
        options.map { ($0, distance(word, $0)) }.filter { $0.1 <= 2 }.min { $0.1 < $1.1 }?.0
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var prev = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var cur = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return a.isEmpty ? b.count : prev[b.count]
    }

    static func err(_ file: String, _ node: Node, _ message: String) -> PolicyError {
        PolicyError(file: file, line: node.mark?.line ?? 0, column: node.mark?.column ?? 0, message: message)
    }

    static func yamlError(_ e: YamlError, file: String) -> PolicyError {
        switch e {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            let ctx = context.map { "\($0.text) " } ?? ""
            return PolicyError(file: file, line: mark.line, column: mark.column, message: "YAML: \(ctx)\(problem)")
        default:
            return PolicyError(file: file, line: 0, column: 0, message: "YAML: \(e)")
        }
    }
}
