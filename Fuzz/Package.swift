// swift-tools-version:6.1
// libFuzzer harnesses, kept out of the root package so `swift test` never builds them.
// Built by `make fuzz` with -sanitize=fuzzer,address. (-parse-as-library: libFuzzer owns
// main; unsafeFlags are fine here, this package is never anyone's dependency.)
import PackageDescription

let package = Package(
    name: "JetFuzz",
    dependencies: [.package(name: "jetbackup", path: "..")],
    targets: [
        .executableTarget(
            name: "jetfuzz",
            dependencies: [
                .product(name: "JetStore", package: "jetbackup"),
                .product(name: "JetBackup", package: "jetbackup"),
            ],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
