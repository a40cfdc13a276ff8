@main
struct ReverbCommand {
    static func main() {}
}
