#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Stops the run with `message` when `condition` is false: what libFuzzer reports as a crash, and
/// what fails the corpus replay in `make test`. `fatalError`, unlike `precondition`, keeps its
/// message in optimised builds.
public func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { fatalError("invariant violated: \(message())", file: file, line: line) }
}

/// Whether `FUZZ_TRACE` is set: harnesses then print what they feed and what comes back.
public let tracing = getenv("FUZZ_TRACE") != nil

/// Prints `message` when tracing, for looking at one input (`FUZZ_TRACE=1 .build/debug/<Target> FILE`).
public func trace(_ message: @autoclosure () -> String) {
    if tracing { print(message()) }
}

/// Reads the input as a sequence of small decisions (lengths, flags, choices) and raw slices, so a
/// harness can turn one byte string into a structured scenario; past the end it yields zeros.
public struct FuzzInput {
    private let bytes: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    public var isAtEnd: Bool { offset >= bytes.count }
    public var remaining: Int { max(0, bytes.count - offset) }

    public mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func bool() -> Bool { byte() & 1 == 1 }

    /// Up to `count` bytes (fewer at the end).
    public mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, offset + max(0, count))
        defer { offset = end }
        return Array(bytes[offset..<end])
    }

    public mutating func rest() -> [UInt8] { take(remaining) }

    /// Chunk sizes, a byte each, up to `limit` of them or a 0 (which ends the list and is consumed).
    public mutating func chunkSizes(limit: Int = 8) -> [Int] {
        var sizes: [Int] = []
        while sizes.count < limit, !isAtEnd {
            let size = Int(byte())
            if size == 0 { break }
            sizes.append(size)
        }
        return sizes
    }
}

/// The corpus replay of a fuzz target built without `-DFUZZING`: every file named on the command
/// line, or every file under the named directories (default `Fuzz/<target>/corpus` and
/// `Fuzz/<target>/regressions`), goes through `fuzz` once. `-v` prints each path before it runs.
public enum CorpusReplay {
    /// What a harness does in a release build without `FUZZING` (`swift build -c release`, `make run`):
    /// it needs `@testable` access to the code it drives, which only debug builds and `make fuzz` give,
    /// so it is compiled out and says so.
    public static func unavailable(target: String) -> Never {
        print(
            "\(target): built in release without FUZZING, so without its harness; replay with the debug build "
                + "(.build/debug/\(target)) or fuzz with make fuzz")
        exit(64)
    }

    public static func run(target: String, _ fuzz: (UnsafeRawBufferPointer) -> Void) {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let verbose = arguments.contains("-v")
        arguments.removeAll { $0 == "-v" }
        if arguments.isEmpty {
            arguments = ["Fuzz/\(target)/corpus", "Fuzz/\(target)/regressions"].filter(isDirectory)
            guard !arguments.isEmpty else {
                printError("\(target): no Fuzz/\(target)/corpus here; run from the package root or name inputs")
                exit(2)
            }
        }
        var files: [String] = []
        for argument in arguments {
            if isDirectory(argument) {
                files += listFiles(argument)
            } else {
                files.append(argument)
            }
        }
        for path in files {
            guard let data = readFile(path) else {
                printError("\(target): cannot read \(path)")
                exit(2)
            }
            if verbose { print(path) }
            data.withUnsafeBytes { fuzz($0) }
        }
        print("\(target): \(files.count) inputs ran, every invariant held")
    }

    static func printError(_ message: String) {
        var line = message + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }

    /// Regular files below `directory`, sorted, hidden files skipped.
    static func listFiles(_ directory: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var files: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard !name.hasPrefix(".") else { continue }
            let path = directory + "/" + name
            if isDirectory(path) { files += listFiles(path) } else { files.append(path) }
        }
        return files.sorted()
    }

    static func readFile(_ path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
        }
    }
}

#if FUZZING
    public typealias FuzzerCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

    @_silgen_name("LLVMFuzzerRunDriver")
    private func llvmFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: FuzzerCallback
    ) -> CInt

    /// Runs libFuzzer's driver. SwiftPM links an executable target with `--defsym main=<Target>_main`,
    /// which would replace libFuzzer's own `main`; each target's `<Target>_main` calls this instead.
    public func runFuzzer(
        _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, _ callback: FuzzerCallback
    ) -> CInt {
        var argc = argc
        var argv = argv
        return llvmFuzzerRunDriver(&argc, &argv, callback)
    }
#endif

/// Everything but RFC 3986 unreserved characters as `%XX`.
public func percentEncode(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
            UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = Array("0123456789ABCDEF".unicodeScalars)
            out += "%"
            out.unicodeScalars.append(hex[Int(byte >> 4)])
            out.unicodeScalars.append(hex[Int(byte & 0x0F)])
        }
    }
    return out
}
