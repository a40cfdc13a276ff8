import Foundation
import ReverbRedis
import Testing

@testable import Reverb

/// No container engine runs here, so the deployment files are checked statically.
@Suite("Deployment files")
struct DeploymentFilesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// `KEY: value` lines under the `x-reverb-environment` anchor and `environment:` maps.
    static func composeVariables() throws -> [String] {
        let text = try String(contentsOf: root.appendingPathComponent("docker-compose.yml"), encoding: .utf8)
        var names: [String] = []
        var inEnvironment = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("x-reverb-environment") || trimmed == "environment:" {
                inEnvironment = true
                continue
            }
            if inEnvironment {
                guard line.hasPrefix("  "), let colon = trimmed.firstIndex(of: ":") else {
                    inEnvironment = false
                    continue
                }
                names.append(String(trimmed[..<colon]))
            }
        }
        return names
    }

    @Test("docker-compose.yml sets only variables the server reads")
    func composeVariablesAreKnown() throws {
        let names = try Self.composeVariables()
        #expect(names.count >= 10)
        for name in names {
            #expect(EnvironmentVariables.all.contains(name), "unknown variable \(name)")
        }
    }

    @Test("the compose environment is a valid two-node scaling configuration")
    func composeEnvironmentLoads() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("docker-compose.yml"), encoding: .utf8)
        var environment: [String: String] = [:]
        for name in try Self.composeVariables() {
            let line = text.split(separator: "\n").first {
                $0.trimmingCharacters(in: .whitespaces).hasPrefix(name + ":")
            }
            let value =
                line.map { $0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces) } ?? ""
            environment[name] = value.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        let configuration = try ConfigurationLoader.load(
            flags: ConfigurationFlags(), environment: environment,
            workingDirectory: FileManager.default.temporaryDirectory.path)
        #expect(configuration.scaling.enabled)
        #expect(configuration.apps.map(\.key) == ["app-key"])
        #expect(configuration.scaling.redis.host == "redis")
    }

    @Test("every variable the loader documents is one it reads")
    func variablesAreRead() throws {
        let configDirectory = Self.root.appendingPathComponent("Sources/Reverb/Config")
        var source = ""
        for file in try FileManager.default.contentsOfDirectory(atPath: configDirectory.path)
        where file.hasSuffix(".swift") && file != "EnvironmentVariables.swift" {
            source += try String(contentsOf: configDirectory.appendingPathComponent(file), encoding: .utf8)
        }
        for name in EnvironmentVariables.all {
            #expect(source.contains("\"\(name)\""), "\(name) is never read")
        }
    }
}
