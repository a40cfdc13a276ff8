/// The hash slot of a key in a Redis Cluster: CRC16 (XMODEM) of the key, or of its hash tag, mod 16384.
///
/// The hash tag is the part between the first `{` and the next `}` when that part is not empty, so
/// `{user1000}.following` and `{user1000}.followers` share a slot. Pub/sub channels (for
/// `SPUBLISH`/`SSUBSCRIBE`) and stream keys hash alike.
public enum RedisClusterSlot {
    /// Slots in a Redis Cluster.
    public static let count = 16_384

    /// The slot of `key`, in `0..<16384`.
    public static func slot(forKey key: String) -> Int {
        var bytes = Array(key.utf8)[...]
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
            let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            bytes = bytes[(open + 1)..<close]
        }
        return Int(crc16(bytes)) & (count - 1)
    }

    /// CRC16/XMODEM (polynomial 0x1021, initial 0), as in Redis's `crc16.c`.
    public static func crc16<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 {
                crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
            }
        }
        return crc
    }
}
