import Foundation
import StreamgatePluginAPI

/// Every problem of a configuration file, not only the first (what
/// `check-config` prints): after each problem the offending key is taken out
/// of the document, so its default applies, and the document is checked
/// again, plugins included. It stops at a syntax error (nothing after it can
/// be read), at a required key (taken out, it is missing: reported once), or
/// after `limit` problems.
enum ConfigurationChecker {
    static func problems(in data: Data, file: String, limit: Int = 50, registry: () -> PluginRegistry)
        -> [ConfigurationErrorInFile]
    {
        var root: JSONValue
        do {
            root = try GatewayConfiguration.decode(data, file: file)
        } catch {
            return [error]
        }
        var found: [ConfigurationErrorInFile] = []
        while found.count < limit {
            let problem: ConfigurationErrorInFile
            do {
                let configuration = try GatewayConfiguration.build(root, file: file)
                _ = try PluginSet(configuration: configuration, registry: registry())
                return found
            } catch {
                problem = error
            }
            // Taken out, a required key is missing, and an array whose only
            // bad item was taken out may be empty: the first problem says enough.
            if let key = problem.key, found.contains(where: { $0.key.map { Self.isSameOrWithin($0, key) } ?? false }) {
                return found
            }
            found.append(problem)
            guard let key = problem.key, let next = removing(key, from: root), next != root else { return found }
            root = next
        }
        return found
    }

    /// `path` is `ancestor` or lies within it (`a.b[0]` within `a.b`).
    static func isSameOrWithin(_ path: String, _ ancestor: String) -> Bool {
        path == ancestor || path.hasPrefix(ancestor + ".") || path.hasPrefix(ancestor + "[")
    }

    /// `root` without the value at `path` (`limits.max_connections`,
    /// `authorization[1].options.keys`, `limits.allowed_origins[2]`), or nil
    /// when nothing is there. Keys may hold dots (`properties.fetch.wait.max.ms`):
    /// at each object the longest key that begins the rest of the path is taken.
    static func removing(_ path: String, from root: JSONValue) -> JSONValue? {
        guard !path.isEmpty else { return nil }
        switch root {
        case .object(var object):
            let candidates = object.keys.filter { path == $0 || path.hasPrefix($0 + ".") || path.hasPrefix($0 + "[") }
            guard let key = candidates.max(by: { $0.count < $1.count }) else { return nil }
            var rest = String(path.dropFirst(key.count))
            if rest.isEmpty {
                object[key] = nil
                return .object(object)
            }
            if rest.hasPrefix(".") { rest.removeFirst() }
            guard let child = object[key], let changed = removing(rest, from: child) else { return nil }
            object[key] = changed
            return .object(object)
        case .array(var items):
            guard path.hasPrefix("["), let close = path.firstIndex(of: "]"),
                  let index = Int(path[path.index(after: path.startIndex)..<close]), items.indices.contains(index)
            else { return nil }
            var rest = String(path[path.index(after: close)...])
            if rest.isEmpty {
                items.remove(at: index)
                return .array(items)
            }
            if rest.hasPrefix(".") { rest.removeFirst() }
            guard let changed = removing(rest, from: items[index]) else { return nil }
            items[index] = changed
            return .array(items)
        default:
            return nil
        }
    }
}
