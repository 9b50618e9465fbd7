// Braces in archive patterns, as webdataset shard lists are written.

import Testing

@testable import ImageSources

@Suite struct BraceExpansionTests {
    @Test(arguments: [
        ("s-{0..3}.tar", ["s-0.tar", "s-1.tar", "s-2.tar", "s-3.tar"]),
        ("s-{008..011}.tar", ["s-008.tar", "s-009.tar", "s-010.tar", "s-011.tar"]),
        ("s-{8..011}.tar", ["s-008.tar", "s-009.tar", "s-010.tar", "s-011.tar"]),
        ("s-{2..0}", ["s-2", "s-1", "s-0"]),
        ("{-1..1}", ["-1", "0", "1"]),
        ("{train,val}/{0..1}.tar", ["train/0.tar", "train/1.tar", "val/0.tar", "val/1.tar"]),
        ("{a,b{1..2}}c", ["ac", "b1c", "b2c"]),
        ("{a,,b}", ["a", "", "b"]),
        ("plain.tar", ["plain.tar"]),
        ("odd-{x}-{1..}-{..2}-{}.tar", ["odd-{x}-{1..}-{..2}-{}.tar"]),
        ("open-{1..2", ["open-{1..2"]),
        ("q?x={1,2}", ["q?x=1", "q?x=2"]),
        ("{-9223372036854775808..1}", ["{-9223372036854775808..1}"]),
        ("{0..-9223372036854775808}", ["{0..-9223372036854775808}"]),
        ("{-999999999999999999..-999999999999999998}", ["-999999999999999999", "-999999999999999998"]),
    ])
    func bracesExpandAsAShellDoes(_ pattern: String, _ names: [String]) throws {
        #expect(try BraceExpansion.expand(pattern) == names)
    }

    @Test func tooManyNamesAreRefused() {
        #expect {
            try BraceExpansion.expand("{0..999}-{0..999}")
        } throws: { "\($0)".contains("over 100000 names") }
    }
}
