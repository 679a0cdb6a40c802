//! Builds zlib-ng with the `cc` crate, as its CMake build does with `-DWITH_OPTIM=OFF`: the
//! portable C code of every function (no SIMD variants, so no per-file CPU flags and nothing that
//! needs a CPU feature at run time), the gzip file functions, and the native `zng_` API. This is
//! relive's replacement for the crate's CMake build (see Cargo.toml), so that building relive
//! needs no cmake. Tested on x86_64 and aarch64 Linux; the same flags are what CMake uses on
//! macOS. (Edition 2018, as the crate's: panics take their arguments explicitly.)

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// zlib-ng's sources without architecture-specific code (CMakeLists.txt: ZLIB_SRCS,
/// ZLIB_ALL_FALLBACK_SRCS, the Chorba CRC, runtime CPU detection and ZLIB_GZFILE_SRCS).
const SOURCES: &[&str] = &[
    "adler32",
    "compress",
    "crc32",
    "crc32_braid_comb",
    "deflate",
    "deflate_fast",
    "deflate_huff",
    "deflate_medium",
    "deflate_quick",
    "deflate_rle",
    "deflate_slow",
    "deflate_stored",
    "functable",
    "infback",
    "inflate",
    "inftrees",
    "insert_string",
    "insert_string_roll",
    "trees",
    "uncompr",
    "zutil",
    "arch/generic/adler32_c",
    "arch/generic/adler32_fold_c",
    "arch/generic/chunkset_c",
    "arch/generic/compare256_c",
    "arch/generic/crc32_braid_c",
    "arch/generic/crc32_fold_c",
    "arch/generic/slide_hash_c",
    "arch/generic/crc32_chorba_c",
    "cpu_features",
    "gzlib",
    "gzread",
    "gzwrite",
];

/// Writes `input` (a CMake template under src/zlib-ng) to `output` without its symbol prefix
/// (relive adds none), as CMake's configure_file does.
fn configure(input: &str, output: &Path) {
    let text = fs::read_to_string(Path::new("src/zlib-ng").join(input))
        .unwrap_or_else(|e| panic!("cannot read src/zlib-ng/{}: {}", input, e));
    fs::write(output, text.replace("@ZLIB_SYMBOL_PREFIX@", ""))
        .unwrap_or_else(|e| panic!("cannot write {}: {}", output.display(), e));
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/zlib-ng");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let include = out.join("include");
    fs::create_dir_all(&include).expect("OUT_DIR is writable");

    configure("zlib-ng.h.in", &include.join("zlib-ng.h"));
    configure("zlib_name_mangling-ng.h.in", &include.join("zlib_name_mangling-ng.h"));
    configure("gzread_mangle.h.in", &include.join("gzread_mangle.h"));
    // `HAVE_UNISTD_H`, which CMake finds on every Unix, decides the size of off_t in the API.
    let zconf = fs::read_to_string("src/zlib-ng/zconf-ng.h.in").expect("zconf-ng.h.in exists");
    let marker = "#ifdef HAVE_UNISTD_H    /* may be set to #if 1 by configure/cmake/etc */";
    assert!(zconf.contains(marker), "zconf-ng.h.in changed: check HAVE_UNISTD_H");
    fs::write(
        include.join("zconf-ng.h"),
        zconf.replace(marker, "#if 1    /* set as CMake sets it on Unix */"),
    )
    .expect("OUT_DIR is writable");

    let mut build = cc::Build::new();
    build
        .warnings(false)
        .std("c11")
        .include(&include)
        .include("src/zlib-ng")
        .files(SOURCES.iter().map(|s| format!("src/zlib-ng/{s}.c")))
        .define("WITH_ALL_FALLBACKS", None)
        .define("WITH_GZFILEOP", None)
        .define("HAVE_ALIGNED_ALLOC", None)
        .define("HAVE_ATTRIBUTE_ALIGNED", None)
        .define("HAVE_BUILTIN_CTZ", None)
        .define("HAVE_BUILTIN_CTZLL", None)
        .define("HAVE_THREAD_LOCAL", None)
        .define("HAVE_VISIBILITY_HIDDEN", None)
        .define("HAVE_VISIBILITY_INTERNAL", None)
        .define("HAVE_POSIX_MEMALIGN", None)
        .define("_LARGEFILE64_SOURCE", "1")
        .flag_if_supported("-fvisibility=hidden")
        // An undeclared function means a missing define: fail rather than guess.
        .flag_if_supported("-Werror-implicit-function-declaration");
    let target = env::var("TARGET").expect("cargo sets TARGET");
    if target.contains("apple") {
        build.define("_C99_SOURCE", None);
    }
    build.compile("z-ng");

    println!("cargo:root={}", out.display());
    println!("cargo:include={}", include.display());
    println!("cargo:rustc-cfg=zng");
}
