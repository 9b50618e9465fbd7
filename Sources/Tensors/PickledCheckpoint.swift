// PyTorch `.bin` checkpoints (torch.save's ZIP of data.pkl + one file per storage), read with a restricted
// unpickler: it understands the opcodes torch.save emits and rebuilds tensors and dictionaries, and it refuses
// every other global, so a pickle can never run code here.

/// Reading `pytorch_model*.bin` files.
public enum PickledCheckpoint {
    /// The globals a state dict may name; anything else is refused.
    static let allowedGlobals: Set<String> = [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage",
    ]

    public static func read(path: String) throws -> [String: WeightTensor] {
        let file = try MappedFile(path: path)
        let archive = try ZipArchive(file: file)
        guard let pickle = archive.entries.first(where: { $0.key.hasSuffix("/data.pkl") || $0.key == "data.pkl" })
        else {
            throw TensorError.badHeader(file: path, reason: "no data.pkl in the archive (not a torch.save file)")
        }
        let prefix = String(pickle.key.dropLast("data.pkl".count))
        func stored(_ name: String, _ entry: ZipArchive.Entry) throws -> Range<Int> {
            guard entry.method == 0, entry.uncompressedSize == entry.data.count else {
                throw TensorError.badHeader(
                    file: path,
                    reason:
                        "entry \(name) is compressed (method \(entry.method)); torch.save stores entries uncompressed")
            }
            return entry.data
        }
        // torch.save writes the byte order of the machine that saved (since 2.1); the tensors are read as they lie.
        if let order = archive.entries[prefix + "byteorder"] {
            let text = String(decoding: file.bytes[try stored(prefix + "byteorder", order)], as: UTF8.self)
            guard text.trimmingCharacters(in: .whitespacesAndNewlines) == "little" else {
                throw TensorError.badHeader(
                    file: path, reason: "saved on a \(text.prefix(16))-endian machine; this reads little-endian only")
            }
        }
        var machine = Unpickler(bytes: file.bytes, range: try stored(pickle.key, pickle.value), path: path)
        let root = try machine.run()
        guard case let .dict(items) = root else {
            throw TensorError.badHeader(file: path, reason: "the pickle holds \(root.kind), not a state dict")
        }
        var tensors: [String: WeightTensor] = [:]
        for (key, value) in items {
            guard case let .string(name) = key else { continue }
            guard case let .tensor(storage, offset, shape) = value else {
                throw TensorError.badTensor(file: path, tensor: name, reason: "is \(value.kind), not a tensor")
            }
            guard let entry = archive.entries[prefix + "data/" + storage.key] else {
                throw TensorError.badTensor(
                    file: path, tensor: name, reason: "storage \(storage.key) is not in the archive")
            }
            let range = try stored(prefix + "data/" + storage.key, entry)
            let elements = range.count / storage.dtype.size
            guard let count = WeightTensor.elementCount(of: shape, size: storage.dtype.size), offset >= 0,
                offset <= elements, count <= elements - offset
            else {
                throw TensorError.badTensor(file: path, tensor: name, reason: "its elements run past its storage")
            }
            let base = file.bytes.baseAddress! + range.lowerBound + offset * storage.dtype.size
            tensors[name] = WeightTensor(name: name, shape: shape, dtype: storage.dtype, base: base, owner: file)
        }
        return tensors
    }
}

/// What the restricted unpickler can build.
indirect enum PickleValue {
    case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
    case tuple([PickleValue]), list([PickleValue]), dict([(PickleValue, PickleValue)])
    case global(String)
    case storage(Storage)
    case tensor(Storage, offset: Int, shape: [Int])
    case mark

    struct Storage {
        let key: String
        let dtype: DType
    }

    var kind: String {
        switch self {
        case .none: "None"
        case .bool: "a bool"
        case .int: "an int"
        case .float: "a float"
        case .string: "a string"
        case .bytes: "bytes"
        case .tuple: "a tuple"
        case .list: "a list"
        case .dict: "a dict"
        case let .global(name): "the global \(name)"
        case .storage: "a storage"
        case .tensor: "a tensor"
        case .mark: "a mark"
        }
    }
}

/// A pickle virtual machine limited to building data.
struct Unpickler {
    let bytes: UnsafeRawBufferPointer
    var position: Int
    let end: Int
    let path: String
    var stack: [PickleValue] = []
    var memo: [Int: PickleValue] = [:]

    init(bytes: UnsafeRawBufferPointer, range: Range<Int>, path: String) {
        self.bytes = bytes
        position = range.lowerBound
        end = range.upperBound
        self.path = path
    }

    func fail(_ reason: String) -> TensorError {
        .badHeader(file: path, reason: "pickle: \(reason)")
    }

    mutating func byte() throws -> UInt8 {
        guard position < end else { throw fail("ends early") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func take(_ count: Int) throws -> [UInt8] {
        guard count >= 0, count <= end - position else { throw fail("a field runs past the end") }
        defer { position += count }
        return Array(bytes[position..<(position + count)])
    }

    mutating func littleEndian(_ count: Int) throws -> Int {
        try take(count).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    }

    mutating func pop() throws -> PickleValue {
        guard let value = stack.popLast() else { throw fail("stack underflow") }
        return value
    }

    mutating func popToMark() throws -> [PickleValue] {
        guard let mark = stack.lastIndex(where: { if case .mark = $0 { return true } else { return false } }) else {
            throw fail("no mark")
        }
        let items = Array(stack[(mark + 1)...])
        stack.removeSubrange(mark...)
        return items
    }

    mutating func run() throws -> PickleValue {
        while true {
            let opcode = try byte()
            switch opcode {
            case 0x80: _ = try byte()  // PROTO
            case 0x95: _ = try take(8)  // FRAME
            case UInt8(ascii: "."): return try pop()  // STOP
            case UInt8(ascii: "}"): stack.append(.dict([]))
            case UInt8(ascii: "]"): stack.append(.list([]))
            case UInt8(ascii: ")"): stack.append(.tuple([]))
            case UInt8(ascii: "("): stack.append(.mark)
            case UInt8(ascii: "N"): stack.append(.none)
            case 0x88: stack.append(.bool(true))
            case 0x89: stack.append(.bool(false))
            case UInt8(ascii: "K"): stack.append(.int(Int(try byte())))
            case UInt8(ascii: "M"): stack.append(.int(try littleEndian(2)))
            case UInt8(ascii: "J"): stack.append(.int(Int(Int32(truncatingIfNeeded: try littleEndian(4)))))
            case 0x8A:  // LONG1
                let length = Int(try byte())
                guard length <= 8 else { throw fail("integer of \(length) bytes") }
                let raw = try take(length)
                var value = raw.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
                if length > 0 && length < 8 && raw[length - 1] & 0x80 != 0 { value -= 1 << (8 * length) }
                stack.append(.int(value))
            case UInt8(ascii: "G"):
                let raw = try take(8)
                stack.append(.float(Double(bitPattern: raw.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
            case UInt8(ascii: "X"):
                stack.append(.string(String(decoding: try take(try littleEndian(4)), as: UTF8.self)))
            case 0x8C: stack.append(.string(String(decoding: try take(Int(try byte())), as: UTF8.self)))
            case UInt8(ascii: "T"): stack.append(.bytes(try take(try littleEndian(4))))
            case UInt8(ascii: "U"), 0x43: stack.append(.bytes(try take(Int(try byte()))))
            case UInt8(ascii: "q"): memo[Int(try byte())] = stack.last
            case UInt8(ascii: "r"): memo[try littleEndian(4)] = stack.last
            case 0x94: memo[memo.count] = stack.last  // MEMOIZE
            case UInt8(ascii: "h"): stack.append(try recall(Int(try byte())))
            case UInt8(ascii: "j"): stack.append(try recall(try littleEndian(4)))
            case UInt8(ascii: "c"):
                let module = try line(), name = try line()
                stack.append(try global(module, name))
            case 0x93:  // STACK_GLOBAL
                guard case let .string(name) = try pop(), case let .string(module) = try pop() else {
                    throw fail("STACK_GLOBAL without strings")
                }
                stack.append(try global(module, name))
            case UInt8(ascii: "t"): stack.append(.tuple(try popToMark()))
            case 0x85: stack.append(.tuple([try pop()]))
            case 0x86:
                let b = try pop(), a = try pop()
                stack.append(.tuple([a, b]))
            case 0x87:
                let c = try pop(), b = try pop(), a = try pop()
                stack.append(.tuple([a, b, c]))
            case UInt8(ascii: "Q"): stack.append(try persistent(try pop()))
            case UInt8(ascii: "R"):
                let arguments = try pop(), callable = try pop()
                stack.append(try reduce(callable, arguments))
            case UInt8(ascii: "b"): _ = try pop()  // BUILD: object state (OrderedDict attributes) is not needed
            case UInt8(ascii: "s"):
                let value = try pop(), key = try pop()
                try setItems([(key, value)])
            case UInt8(ascii: "u"):
                let flat = try popToMark()
                guard flat.count % 2 == 0 else { throw fail("SETITEMS with an odd count") }
                try setItems(stride(from: 0, to: flat.count, by: 2).map { (flat[$0], flat[$0 + 1]) })
            case UInt8(ascii: "a"):
                let value = try pop()
                try append([value])
            case UInt8(ascii: "e"): try append(try popToMark())
            default:
                throw fail("opcode 0x\(String(opcode, radix: 16)) at byte \(position - 1) is not allowed")
            }
        }
    }

    mutating func line() throws -> String {
        var text: [UInt8] = []
        while true {
            let next = try byte()
            if next == 0x0A { return String(decoding: text, as: UTF8.self) }
            text.append(next)
            guard text.count < 256 else { throw fail("a global name is too long") }
        }
    }

    func recall(_ index: Int) throws -> PickleValue {
        guard let value = memo[index] else { throw fail("memo \(index) is unset") }
        return value
    }

    func global(_ module: String, _ name: String) throws -> PickleValue {
        let full = "\(module).\(name)"
        guard PickledCheckpoint.allowedGlobals.contains(full) else {
            throw fail("refuses the global \(full): only tensors and dictionaries are rebuilt, never code")
        }
        return .global(full)
    }

    /// `('storage', torch.XStorage, key, location, numel)`.
    func persistent(_ id: PickleValue) throws -> PickleValue {
        guard case let .tuple(fields) = id, fields.count >= 3, case .string("storage") = fields[0],
            case let .global(type) = fields[1], case let .string(key) = fields[2]
        else { throw fail("persistent id is not a storage reference") }
        guard let dtype = DType.allCases.first(where: { "torch.\($0.torchStorage)" == type }) else {
            throw fail("storage type \(type) is not float32, float16 or bfloat16")
        }
        return .storage(.init(key: key, dtype: dtype))
    }

    func reduce(_ callable: PickleValue, _ arguments: PickleValue) throws -> PickleValue {
        guard case let .global(name) = callable, case let .tuple(args) = arguments else {
            throw fail("REDUCE of \(callable.kind)")
        }
        switch name {
        case "collections.OrderedDict":
            return .dict([])
        case "torch._utils._rebuild_parameter":
            guard let data = args.first else { throw fail("_rebuild_parameter without data") }
            return data
        case "torch._utils._rebuild_tensor_v2":
            guard args.count >= 4, case let .storage(storage) = args[0], case let .int(offset) = args[1],
                case let .tuple(sizeValues) = args[2], case let .tuple(strideValues) = args[3]
            else { throw fail("_rebuild_tensor_v2 with unexpected arguments") }
            let shape = try sizeValues.map { value -> Int in
                guard case let .int(size) = value, size >= 0 else { throw fail("a tensor size is not an integer") }
                return size
            }
            let strides = try strideValues.map { value -> Int in
                guard case let .int(stride) = value else { throw fail("a tensor stride is not an integer") }
                return stride
            }
            guard WeightTensor.elementCount(of: shape) != nil else {
                throw fail("a tensor of sizes \(shape) is too large to address")
            }
            var expected = [Int](repeating: 1, count: shape.count)
            for index in stride(from: shape.count - 2, through: 0, by: -1) {
                expected[index] = expected[index + 1] &* shape[index + 1]  // any product, if a size is 0
            }
            guard strides == expected || shape.contains(0) else {
                throw fail("a tensor with strides \(strides) is not contiguous; save it with .contiguous()")
            }
            return .tensor(storage, offset: offset, shape: shape)
        default:
            throw fail("cannot call \(name)")
        }
    }

    mutating func setItems(_ items: [(PickleValue, PickleValue)]) throws {
        guard case let .dict(existing) = try pop() else { throw fail("SETITEM on a non-dict") }
        stack.append(.dict(existing + items))
    }

    mutating func append(_ values: [PickleValue]) throws {
        guard case let .list(existing) = try pop() else { throw fail("APPEND on a non-list") }
        stack.append(.list(existing + values))
    }
}
