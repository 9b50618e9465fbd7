// swift-tools-version: 6.0
// Tools 6.0 selects the Swift 6 language mode: complete concurrency checking in every target.
import PackageDescription

let package = Package(
    name: "infmllm",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "infmllm", targets: ["infmllm"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // MARK: C libraries (Debian packages; see ops/install-deps.sh)
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CWebP", pkgConfig: "libwebpdemux", providers: [.apt(["libwebp-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),

        // giflib ships no pkg-config file: its library is named here (Debian's libgif-dev), as is zlib, which PNG text
        // chunks are inflated with.
        .target(
            name: "CImageCodecs", dependencies: ["CJPEG", "CPNG", "CWebP"],
            linkerSettings: [.linkedLibrary("gif"), .linkedLibrary("z"), .linkedLibrary("heif")]),
        // The CPU kernels are built optimised in every configuration (tests run debug builds of the Swift code).
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),

        // MARK: Domain
        .target(name: "Jobs"),
        .target(name: "Tokenization"),
        .target(name: "CDigest", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "Imaging", dependencies: ["CImageCodecs", "CDigest"]),
        .target(name: "Parquet", dependencies: ["CZlib", "CZstd"]),
        .target(name: "ImageSources", dependencies: ["Tensors", "Parquet", "CCurl", "CZlib", "CDigest"]),

        // MARK: Engine
        .target(name: "Tensors"),
        .target(name: "Compute", dependencies: ["Tensors"]),
        .target(name: "CPUBackend", dependencies: ["Compute", "Tensors", "CKernels", "COpenBLAS"]),
        // CUDA through dlopen: no CUDA headers or libraries at build time.
        .target(name: "CCUDA", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "CUDABackend", dependencies: ["Compute", "Tensors", "CCUDA"]),
        .target(
            name: "Models", dependencies: ["Tensors", "Compute", "COpenBLAS", "Tokenization", "Imaging"],
            resources: [.embedInCode("Resources/tokenizer.model")]),
        .target(name: "Generation", dependencies: ["Jobs", "Models", "Compute", "Tensors", "Imaging", "Tokenization"]),

        // MARK: Service adapters
        .target(name: "Postgres", dependencies: ["Jobs", "CLibPQ"]),
        .target(name: "RabbitMQ", dependencies: ["Jobs", "CRabbitMQ"]),
        .target(
            name: "Worker",
            dependencies: [
                "Jobs", "Generation", "Models", "Imaging", "ImageSources",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // MARK: Composition root
        .executableTarget(
            name: "infmllm",
            dependencies: [
                "Jobs", "Postgres", "RabbitMQ", "Tokenization", "Imaging", "ImageSources", "Tensors", "Models",
                "Generation",
                "Compute", "CPUBackend", "CUDABackend", "Worker", "Parquet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["Tensors"], path: "Tests/TestSupport"),
        .testTarget(
            name: "SystemLibraryTests",
            dependencies: ["COpenBLAS", "CRabbitMQ", "CLibPQ", "CJPEG", "CPNG", "CCurl", "CZlib"]),
        .testTarget(name: "JobsTests", dependencies: ["Jobs"]),
        .testTarget(
            name: "CUDABackendTests",
            dependencies: ["CUDABackend", "CPUBackend", "Compute", "Tensors", "TestSupport"]),
        .testTarget(
            name: "CPUBackendTests", dependencies: ["CPUBackend", "Compute", "CKernels", "Tensors", "TestSupport"]),
        .testTarget(
            name: "GenerationTests",
            dependencies: [
                "Generation", "Jobs", "Models", "Compute", "CPUBackend", "CUDABackend", "Imaging", "Tensors",
                "TestSupport",
            ],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "ImagingTests", dependencies: ["TestSupport", "Imaging"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "TokenizationTests", dependencies: ["TestSupport", "Tokenization"], resources: [.copy("Fixtures")]),
        .testTarget(name: "PostgresTests", dependencies: ["TestSupport", "Postgres", "Jobs"]),
        .testTarget(name: "RabbitMQTests", dependencies: ["TestSupport", "RabbitMQ", "Jobs"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "infmllm", "RabbitMQ"]),
        .testTarget(
            name: "WorkerTests",
            dependencies: [
                "Worker", "Jobs", "Generation", "Models", "CPUBackend", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "ImageSourcesTests", dependencies: ["ImageSources", "Parquet", "TestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "ParquetTests", dependencies: ["Parquet", "TestSupport"]),
        .testTarget(name: "SystemTests", dependencies: ["Postgres", "RabbitMQ", "Jobs", "Tensors", "TestSupport"]),
    ]
)
