import NIOSSL

/// Builds the listener's TLS context from `options.tls` (wss:// and https:// on the same port).
enum TLSContextFactory {
    /// Why the certificate or key could not be used; names the file.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func makeServerContext(_ files: TLSFiles) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificatePath)
        } catch {
            throw Failure(description: "Cannot read TLS certificate \"\(files.certificatePath)\": \(error).")
        }
        guard !chain.isEmpty else {
            throw Failure(description: "TLS certificate \"\(files.certificatePath)\" holds no certificate.")
        }
        let keyPath = files.privateKeyPath ?? files.certificatePath
        let key: NIOSSLPrivateKey
        do {
            if let passphrase = files.passphrase {
                key = try NIOSSLPrivateKey(file: keyPath, format: .pem) { (callback: NIOSSLPassphraseSetter<[UInt8]>) in
                    callback(Array(passphrase.utf8))
                }
            } else {
                key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
            }
        } catch {
            throw Failure(description: "Cannot read TLS private key \"\(keyPath)\": \(error).")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        if let caFile = files.caFile {
            configuration.trustRoots = .file(caFile)
        }
        if files.verifyPeer {
            configuration.certificateVerification = .noHostnameVerification
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw Failure(description: "Cannot use the TLS certificate and key: \(error).")
        }
    }
}
