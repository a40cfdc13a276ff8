import Foundation

/// A scenario's figures: one column per phase, printed as a table and written as JSON.
struct BenchReport: Codable, Sendable {
    struct Metric: Codable, Sendable {
        var name: String
        var unit: String
        var value: Double
    }

    struct Phase: Codable, Sendable {
        var name: String
        var metrics: [Metric] = []

        mutating func add(_ name: String, _ value: Double, _ unit: String = "") {
            metrics.append(Metric(name: name, unit: unit, value: value))
        }

        func value(_ name: String) -> Double? { metrics.first { $0.name == name }?.value }
    }

    var scenario: String
    var parameters: [String: String]
    var phases: [Phase] = []
    /// Samples over time (long scenarios): column name to values, `t_s` the seconds of each sample.
    var series: [String: [Double]]?

    /// The human table: metrics down, phases across.
    func table() -> String {
        var names: [(String, String)] = []
        for phase in phases {
            for metric in phase.metrics where !names.contains(where: { $0.0 == metric.name }) {
                names.append((metric.name, metric.unit))
            }
        }
        let header = ["\(scenario)"] + phases.map(\.name)
        var rows: [[String]] = [header]
        for (name, unit) in names {
            var row = [unit.isEmpty ? name : "\(name) (\(unit))"]
            for phase in phases {
                row.append(phase.value(name).map(Self.format) ?? "-")
            }
            rows.append(row)
        }
        var widths = Array(repeating: 0, count: header.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        var lines: [String] = []
        let parameterLine = parameters.keys.sorted().map { "\($0)=\(parameters[$0]!)" }.joined(separator: " ")
        lines.append("== \(scenario): \(parameterLine)")
        for (rowIndex, row) in rows.enumerated() {
            var line = ""
            for (index, cell) in row.enumerated() {
                line +=
                    index == 0
                    ? cell.padding(toLength: widths[0], withPad: " ", startingAt: 0)
                    : "  "
                        + String(repeating: " ", count: widths[index] - cell.count) + cell
            }
            lines.append(line)
            if rowIndex == 0 { lines.append(String(repeating: "-", count: line.count)) }
        }
        return lines.joined(separator: "\n")
    }

    static func format(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
        if abs(value) >= 100 { return String(format: "%.0f", value) }
        if abs(value) >= 10 { return String(format: "%.1f", value) }
        return String(format: "%.3f", value)
    }

    /// Prints the table and, given a path, writes the JSON.
    func emit(json path: String?) throws {
        print(table())
        print("")
        guard let path else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try encoder.encode(self).write(to: URL(fileURLWithPath: path))
        } catch {
            throw BenchError("--json: cannot write \(path): \(error.localizedDescription)")
        }
    }
}
