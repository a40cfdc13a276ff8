import Foundation
import Testing

@testable import Reverb

/// The loader against real files in a temporary working directory.
@Suite struct ConfigurationFilesTests {
    /// A fresh directory, removed when the test ends.
    final class WorkingDirectory {
        let path: String

        init() throws {
            path =
                FileManager.default.temporaryDirectory
                .appendingPathComponent("reverb-config-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }

        func write(_ relativePath: String, _ contents: String) throws {
            let url = URL(fileURLWithPath: path).appendingPathComponent(relativePath)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            try Data(contents.utf8).write(to: url)
        }

        func load(
            _ environment: [String: String] = [:],
            flags: ConfigurationFlags = ConfigurationFlags()
        ) throws(ConfigurationError) -> ReverbConfiguration {
            try ConfigurationLoader.load(flags: flags, environment: environment, workingDirectory: path)
        }

        func problems(_ environment: [String: String] = [:], flags: ConfigurationFlags = ConfigurationFlags()) -> (
            messages: [String], exitCode: Int32
        ) {
            do {
                _ = try load(environment, flags: flags)
                return ([], 0)
            } catch {
                return (error.messages, error.exitCode)
            }
        }
    }

    private static let appFile = #"{"apps": {"apps": [{"app_id": "7", "key": "file-key", "secret": "s"}]}}"#

    @Test func emptyDirectoryServesTheEmbeddedDefault() throws {
        let directory = try WorkingDirectory()
        let configuration = try directory.load()
        #expect(configuration.usesEmbeddedDefault)
        #expect(configuration.apps == [.development])
    }

    @Test func readsDotEnvAndTheDefaultConfigFile() throws {
        let directory = try WorkingDirectory()
        try directory.write(
            ".env", "REVERB_SERVER_PORT=9001\nREVERB_APP_ID=7\nREVERB_APP_KEY=env-key\nREVERB_APP_SECRET=x\n")
        try directory.write("config/reverb.json", Self.appFile)
        let configuration = try directory.load(["REVERB_SERVER_PORT": "9002"])
        #expect(configuration.server.port == 9002)
        #expect(configuration.apps.map(\.key) == ["env-key"])
        #expect(!configuration.usesEmbeddedDefault)
    }

    @Test func appEnvironmentSelectsItsDotEnvFile() throws {
        let directory = try WorkingDirectory()
        try directory.write(".env", "REVERB_SERVER_PORT=1")
        try directory.write(".env.production", "REVERB_SERVER_PORT=2")
        #expect(try directory.load().server.port == 1)
        #expect(try directory.load(["APP_ENV": "production"]).server.port == 2)
        // Without `.env.staging`, `.env` is read.
        #expect(try directory.load(["APP_ENV": "staging"]).server.port == 1)
    }

    @Test func dotEnvErrorsNameTheirFile() throws {
        let directory = try WorkingDirectory()
        try directory.write(".env.testing", "A=1\nB=x y\n")
        let result = directory.problems(["APP_ENV": "testing"])
        #expect(result.messages == [".env.testing:2: unexpected whitespace in value."])
        #expect(result.exitCode == 78)
    }

    @Test func configFlagAndVariable() throws {
        let directory = try WorkingDirectory()
        try directory.write("config/reverb.json", #"{"servers": {"reverb": {"port": 1}}}"#)
        try directory.write(
            "prod.json",
            #"{"servers": {"reverb": {"port": 2}}, "apps": {"apps": [{"app_id": "1", "key": "k", "secret": "s"}]}}"#)
        try directory.write(
            "other.json",
            #"{"servers": {"reverb": {"port": 3}}, "apps": {"apps": [{"app_id": "1", "key": "k", "secret": "s"}]}}"#)
        #expect(
            try directory.load(["REVERB_CONFIG": "other.json"], flags: .init(configFile: "prod.json")).server.port == 2)
        #expect(try directory.load(["REVERB_CONFIG": "other.json"]).server.port == 3)
        #expect(try directory.load(["REVERB_CONFIG": directory.path + "/prod.json"]).server.port == 2)
        try directory.write(".env", "REVERB_CONFIG=other.json")
        #expect(try directory.load().server.port == 3)
    }

    @Test func namedConfigFileMustExist() throws {
        let directory = try WorkingDirectory()
        let flag = directory.problems(flags: .init(configFile: "prod.json"))
        #expect(flag.messages == [#"--config: "prod.json" does not exist."#])
        #expect(flag.exitCode == 64)
        let variable = directory.problems(["REVERB_CONFIG": "prod.json"])
        #expect(variable.messages == [#"REVERB_CONFIG: "prod.json" does not exist."#])
        #expect(variable.exitCode == 78)
    }

    @Test func configFileNamedByFlagAppearsInMessages() throws {
        let directory = try WorkingDirectory()
        try directory.write("prod.json", "{\n  \"servers\": {\n    \"reverb\": {\"port\": 1,}\n  }\n}")
        let result = directory.problems(flags: .init(configFile: "prod.json"))
        #expect(result.messages == [#"prod.json:3:26: expected a string key."#])
        #expect(result.exitCode == 78)
    }

    @Test func configFileWithoutApps() throws {
        let directory = try WorkingDirectory()
        try directory.write("config/reverb.json", "{}")
        #expect(
            directory.problems().messages == [
                "No application configured: set REVERB_APP_ID, REVERB_APP_KEY and REVERB_APP_SECRET, or add apps to config/reverb.json."
            ])
    }

    @Test func tlsFilesAreCheckedRelativeToTheWorkingDirectory() throws {
        let directory = try WorkingDirectory()
        try directory.write("cert.pem", "-----BEGIN CERTIFICATE-----\n")
        let readable = try directory.load(["REVERB_TLS_CERT": "cert.pem"])
        #expect(readable.server.tls == TLSFiles(certificatePath: "cert.pem"))
        let result = directory.problems(["REVERB_TLS_CERT": "cert.pem", "REVERB_TLS_KEY": "missing.key"])
        #expect(result.messages == [#"REVERB_TLS_KEY: cannot read "missing.key": No such file or directory."#])
    }
}
