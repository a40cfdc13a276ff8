import Foundation
import Testing

@testable import Reverb

@Suite("Herd/Valet certificate discovery (config.md §4.1)")
struct CertificateDiscoveryTests {
    func temporaryHome() throws -> URL {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("reverb-home-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        return home
    }

    @Test("a hostname with a Valet certificate and key serves TLS with them")
    func discovered() throws {
        let home = try temporaryHome()
        defer { try? FileManager.default.removeItem(at: home) }
        let folder = home.appendingPathComponent(".config/valet/Certificates")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("cert".utf8).write(to: folder.appendingPathComponent("app.test.crt"))
        try Data("key".utf8).write(to: folder.appendingPathComponent("app.test.key"))
        let configuration = try ConfigurationLoader.load(
            flags: ConfigurationFlags(), environment: ["HOME": home.path, "REVERB_HOST": "app.test"],
            workingDirectory: home.path)
        #expect(configuration.server.tls?.certificatePath == folder.appendingPathComponent("app.test.crt").path)
        #expect(configuration.server.tls?.privateKeyPath == folder.appendingPathComponent("app.test.key").path)
    }

    @Test("no TLS without both files, or when TLS is configured")
    func notDiscovered() throws {
        let home = try temporaryHome()
        defer { try? FileManager.default.removeItem(at: home) }
        let folder = home.appendingPathComponent(".config/valet/Certificates")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("cert".utf8).write(to: folder.appendingPathComponent("app.test.crt"))
        let onlyCertificate = try ConfigurationLoader.load(
            flags: ConfigurationFlags(), environment: ["HOME": home.path, "REVERB_HOST": "app.test"],
            workingDirectory: home.path)
        #expect(onlyCertificate.server.tls == nil)
        try Data("key".utf8).write(to: folder.appendingPathComponent("app.test.key"))
        try Data("mine".utf8).write(to: home.appendingPathComponent("mine.pem"))
        let configured = try ConfigurationLoader.load(
            flags: ConfigurationFlags(),
            environment: ["HOME": home.path, "REVERB_HOST": "app.test", "REVERB_TLS_CERT": "mine.pem"],
            workingDirectory: home.path)
        #expect(configured.server.tls?.certificatePath == "mine.pem")
    }
}
