// swift-tools-version:6.1
import PackageDescription

// Arrows run one way: jetbackup (main) → JetBackupCLI → JetBackup → JetStore → C targets.
let package = Package(
    name: "jetbackup",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "jetbackup", targets: ["jetbackup"]),
        .library(name: "JetStore", targets: ["JetStore"]),
        .library(name: "JetBackup", targets: ["JetBackup"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        .target(name: "CCRC32C"),
        .target(name: "CFileIO"),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // libcurl's headers (libcurl4-openssl-dev); the library is loaded when an S3
        // repository is first used, not linked (`Sources/CCurl/include/curl_api.h`).
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("dl")]),
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .target(
            name: "JetStore",
            dependencies: [
                "CCRC32C", "CFileIO",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "JetBackup",
            dependencies: [
                "JetStore", "CZstd", "COpenSSL", "CCurl",
            ]
        ),
        .target(
            name: "JetBackupCLI",
            dependencies: [
                "JetStore", "JetBackup",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "jetbackup", dependencies: ["JetBackupCLI"]),
        .testTarget(name: "JetStoreTests", dependencies: ["JetStore", "CCRC32C"]),
        .testTarget(name: "JetBackupTests", dependencies: ["JetBackup", "JetStore"]),
        .testTarget(
            name: "CLITests",
            dependencies: [
                "JetBackupCLI", "JetStore", "JetBackup",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
