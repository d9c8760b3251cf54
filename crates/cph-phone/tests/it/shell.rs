//! The shell language: quoting, expansion, operators, redirections, control flow.

use crate::support::{phone, sh, sh_in};
use cph_phone::shell::{self, Session};

#[test]
fn quoting_and_escapes() {
    let (_d, p) = phone();
    let o = sh(&p, r#"echo 'a  b' "c  d" e\ f "\$HOME" '$HOME' "q\"uote""#);
    assert_eq!(o.out(), "a  b c  d e f $HOME $HOME q\"uote\n");
    let o = sh(&p, "echo a\\\nb");
    assert_eq!(o.out(), "ab\n");
    let o = sh(&p, r#"x=""; for a in "$x" $x ''; do echo "[$a]"; done"#);
    assert_eq!(o.out(), "[]\n[]\n");
}

#[test]
fn variables_and_parameter_expansion() {
    let (_d, p) = phone();
    let o = sh(
        &p,
        "A=hello; B=\"$A world\"; echo $B ${A}x ${#A} ${U:-def} ${A:+alt} ${U-none}; \
         F=/a/b/c.tar.gz; echo ${F##*/} ${F%.*} ${F%%.*} ${F#/}",
    );
    assert_eq!(
        o.out(),
        "hello world hellox 5 def alt none\nc.tar.gz /a/b/c.tar /a/b/c a/b/c.tar.gz\n"
    );
    let o = sh(
        &p,
        "echo $HOME $EXTERNAL_STORAGE $ANDROID_DATA; echo ${PATH%%:*}",
    );
    assert_eq!(o.out(), "/ /sdcard /data\n/product/bin\n");
    let o = sh(&p, "X='a b   c'; set -- $X; echo $#; echo \"$X\"");
    assert_eq!(o.out(), "3\na b   c\n");
    let o = sh(&p, "echo $$ | grep -E '^[0-9]+$' >/dev/null && echo pid");
    assert_eq!(o.out(), "pid\n");
}

#[test]
fn status_and_operators() {
    let (_d, p) = phone();
    let o = sh(
        &p,
        "false; echo $?; true; echo $?; false || echo or; true && echo and; false && echo no; ! false && echo neg",
    );
    assert_eq!(o.out(), "1\n0\nor\nand\nneg\n");
    let o = sh(&p, "true && false || echo fallback");
    assert_eq!(o.out(), "fallback\n");
    assert_eq!(sh(&p, "exit 3").status, 3);
    assert_eq!(sh(&p, "exit 300").status, 44);
    assert_eq!(sh(&p, "false").status, 1);
    let o = sh(&p, "echo a; exit 5; echo b");
    assert_eq!((o.out().as_str(), o.status), ("a\n", 5));
    assert_eq!(sh(&p, "(exit 7); echo $?").out(), "7\n");
    assert_eq!(
        sh(&p, "x=$(false); echo $?; false; y=1; echo $?").out(),
        "1\n0\n"
    );
}

#[test]
fn unknown_command_is_127() {
    let (_d, p) = phone();
    let o = sh(&p, "nosuchcmd arg");
    assert_eq!(o.status, 127);
    assert_eq!(
        o.err(),
        "/system/bin/sh: nosuchcmd: inaccessible or not found\n"
    );
    let o = sh(&p, "nosuchcmd; echo $?");
    assert_eq!(o.out(), "127\n");
}

#[test]
fn syntax_errors_exit_2() {
    let (_d, p) = phone();
    for script in [
        "if true; then",
        "echo 'unterminated",
        "| x",
        "a && ",
        "fi",
        "echo $(x",
        "((",
    ] {
        let o = sh(&p, script);
        assert_eq!(o.status, 2, "{script}");
        assert!(
            o.err().starts_with("/system/bin/sh: syntax error: "),
            "{script}: {}",
            o.err()
        );
    }
}

#[test]
fn comments_and_newlines() {
    let (_d, p) = phone();
    let o = sh(&p, "# comment\necho a # trailing\n\necho b#notcomment\n");
    assert_eq!(o.out(), "a\nb#notcomment\n");
}

#[test]
fn redirections() {
    let (_d, p) = phone();
    let o = sh(
        &p,
        "cd /data 2>/dev/null || mkdir /data; echo one > /data/f; echo two >> /data/f; cat < /data/f; \
         cat /data/f /nope > /data/out 2> /data/err; echo $?; cat /data/out; cat /data/err",
    );
    assert_eq!(
        o.out(),
        "one\ntwo\n1\none\ntwo\ncat: /nope: No such file or directory\n"
    );
    let o = sh(
        &p,
        "cat /nope 2>&1; echo x >/dev/null; ls /nope >/dev/null 2>&1; echo $?",
    );
    assert_eq!(o.out(), "cat: /nope: No such file or directory\n1\n");
    assert_eq!(o.err(), "");
    let o = sh(&p, "cat /nope &> /both; echo hi >&2; cat /both");
    assert_eq!(o.out(), "cat: /nope: No such file or directory\n");
    assert_eq!(o.err(), "hi\n");
    let o = sh(&p, "echo x > /system/f");
    assert_eq!(o.status, 1);
    assert_eq!(
        o.err(),
        "/system/bin/sh: can't create /system/f: Read-only file system\n"
    );
    let o = sh(&p, "cat < /missing");
    assert_eq!(o.status, 1);
    assert!(
        o.err()
            .contains("can't open /missing: No such file or directory")
    );
}

#[test]
fn here_documents() {
    let (_d, p) = phone();
    let o = sh(
        &p,
        "N=world\ncat <<EOF\nhello $N\n  kept\nEOF\ncat <<'RAW'\n$N\nRAW\ncat <<-T\n\tstripped\n\tT\n",
    );
    assert_eq!(o.out(), "hello world\n  kept\n$N\nstripped\n");
}

#[test]
fn pipelines_stream_and_stop() {
    let (_d, p) = phone();
    let o = sh(&p, "echo hello | cat | tr a-z A-Z");
    assert_eq!(o.out(), "HELLO\n");
    // `yes` ends when `head` stops reading.
    let o = sh(&p, "yes | head -n 3");
    assert_eq!(o.out(), "y\ny\ny\n");
    let o = sh(&p, "echo x | false; echo $?; false | true; echo $?");
    assert_eq!(o.out(), "1\n0\n");
    let o = sh_in(&p, "cat | wc -l", "a\nb\nc\n");
    assert_eq!(o.out().trim(), "3");
    let o = sh(&p, "seq 1 100000 | tail -n 1");
    assert_eq!(o.out(), "100000\n");
    let o = sh(&p, "ls /nope 2>&1 | grep -c 'No such'");
    assert_eq!(o.out(), "1\n");
}

#[test]
fn control_flow() {
    let (_d, p) = phone();
    let o = sh(&p, "for x in a b c; do echo $x; done");
    assert_eq!(o.out(), "a\nb\nc\n");
    let o = sh(
        &p,
        "if [ -d / ]; then echo dir; else echo nodir; fi; if false; then :; elif true; then echo elif; fi",
    );
    assert_eq!(o.out(), "dir\nelif\n");
    let o = sh(&p, "i=0; while [ $i -lt 3 ]; do echo $i; i=$((i+1)); done");
    assert_eq!(o.out(), "0\n1\n2\n");
    let o = sh(
        &p,
        "for i in 1 2 3 4; do [ $i = 2 ] && continue; [ $i = 4 ] && break; echo $i; done",
    );
    assert_eq!(o.out(), "1\n3\n");
    let o = sh(
        &p,
        "case foo.txt in *.png) echo png;; *.txt|*.md) echo text;; esac",
    );
    assert_eq!(o.out(), "text\n");
    let o = sh(&p, "f() { echo \"f:$1:$#\"; return 4; }; f a b; echo $?");
    assert_eq!(o.out(), "f:a:2\n4\n");
    let o = sh(&p, "{ echo a; echo b; } | wc -l");
    assert_eq!(o.out().trim(), "2");
    let o = sh_in(
        &p,
        "while read a b; do echo \"<$b|$a>\"; done",
        "1 2 3\nx y\n",
    );
    assert_eq!(o.out(), "<2 3|1>\n<y|x>\n");
}

#[test]
fn command_substitution_and_arithmetic() {
    let (_d, p) = phone();
    let o = sh(
        &p,
        "X=$(echo hi; echo there); echo \"$X\"; echo `echo back`; echo $(( (2+3)*4 % 7 )) $((1<2)) $((10/3))",
    );
    assert_eq!(o.out(), "hi\nthere\nback\n6 1 3\n");
    let o = sh(&p, "echo $((1/0))");
    assert_eq!(o.status, 2);
    let o = sh(&p, "n=$(echo 'a b c' | wc -w); echo $n");
    assert_eq!(o.out(), "3\n");
}

#[test]
fn cd_pwd_and_relative_paths() {
    let (_d, p) = phone();
    let o = sh(
        &p,
        "pwd; mkdir -p /data/local/tmp; cd /data/local/tmp; pwd; echo x > f; cat /data/local/tmp/f; cd ..; pwd; cd ../../..; pwd",
    );
    assert_eq!(o.out(), "/\n/data/local/tmp\nx\n/data/local\n/\n");
    let o = sh(&p, "cd /nope");
    assert_eq!(o.status, 2);
    assert_eq!(
        o.err(),
        "/system/bin/sh: cd: /nope: No such file or directory\n"
    );
}

#[test]
fn nested_sh_and_export() {
    let (_d, p) = phone();
    let o = sh(&p, "sh -c 'echo inner $0 $1; exit 3' zero one; echo $?");
    assert_eq!(o.out(), "inner zero one\n3\n");
    let o = sh(
        &p,
        "export V=1; sh -c 'echo $V'; W=2 sh -c 'echo $W'; echo ${W:-unset}",
    );
    assert_eq!(o.out(), "1\n2\nunset\n");
    let o = sh(&p, "X=5 env | grep '^X='");
    assert_eq!(o.out(), "X=5\n");
}

#[test]
fn scripts_from_files() {
    let (_d, p) = phone();
    let o = sh(
        &p,
        "mkdir -p /data/local/tmp; printf '#!/system/bin/sh\\necho script $1\\nexit 9\\n' > /data/local/tmp/s.sh; \
         sh /data/local/tmp/s.sh a; echo $?; /data/local/tmp/s.sh; echo $?; chmod 755 /data/local/tmp/s.sh; /data/local/tmp/s.sh b; echo $?",
    );
    assert_eq!(o.out(), "script a\n9\n126\nscript b\n9\n");
    let o = sh(&p, "/system/bin/echo via-path");
    assert_eq!(o.out(), "via-path\n");
}

#[test]
fn errexit() {
    let (_d, p) = phone();
    let o = sh(
        &p,
        "set -e; echo a; false || true; if false; then :; fi; false; echo never",
    );
    assert_eq!((o.out().as_str(), o.status), ("a\n", 1));
}

#[test]
fn globbing() {
    let (_d, p) = phone();
    let o = sh(
        &p,
        "mkdir /g; cd /g; touch a.txt b.txt c.log .hidden; echo *.txt; echo /g/*.log; echo *.none; echo '*.txt'",
    );
    assert_eq!(o.out(), "a.txt b.txt\n/g/c.log\n*.none\n*.txt\n");
}

#[test]
fn runaway_recursion_is_stopped() {
    let (_d, p) = phone();
    let o = sh(&p, "f() { f; }; f");
    assert_eq!(o.status, 2);
    assert!(o.err().contains("nested too deeply"));
}

#[test]
fn run_argv_runs_without_parsing() {
    let (_d, p) = phone();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let argv: Vec<String> = ["echo", "a;b", "$HOME"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let s = shell::run_argv(&p, &argv, &mut std::io::empty(), &mut out, &mut err);
    assert_eq!(s, 0);
    assert_eq!(String::from_utf8(out).unwrap(), "a;b $HOME\n");
}

#[test]
fn sessions_keep_state_between_lines() {
    let (_d, p) = phone();
    let mut s = Session::new(&p);
    let mut out = Vec::new();
    let mut err = Vec::new();
    s.run(
        "mkdir -p /data/x; cd /data/x; V=7",
        &mut std::io::empty(),
        &mut out,
        &mut err,
    );
    assert_eq!(s.cwd(), "/data/x");
    s.run("echo $V; pwd", &mut std::io::empty(), &mut out, &mut err);
    assert_eq!(String::from_utf8_lossy(&out), "7\n/data/x\n");
    assert_eq!(s.run("if", &mut std::io::empty(), &mut out, &mut err), 2);
    assert_eq!(s.exited(), None);
    s.run("exit 4", &mut std::io::empty(), &mut out, &mut err);
    assert_eq!(s.exited(), Some(4));
}

#[test]
fn path_escapes_through_the_shell_stay_inside() {
    let (d, p) = phone();
    std::fs::create_dir_all(d.path().join("root/etc")).unwrap();
    std::fs::write(d.path().join("root/etc/passwd"), "phone-passwd\n").unwrap();
    let o = sh(&p, "cat ../../../../etc/passwd");
    assert_eq!(o.out(), "phone-passwd\n");
    let o = sh(
        &p,
        "cd /; ln -s /../../etc x; cat x/passwd; ln -s ../../../../../../.. up; cat up/etc/passwd",
    );
    assert_eq!(o.out(), "phone-passwd\nphone-passwd\n");
    let o = sh(&p, "cat /../../../../../../proc/self/status");
    assert_eq!(o.status, 1);
    assert!(o.err().contains("No such file or directory"));
    // Links the shell creates are plain host links whose text is a device path; the host
    // never follows them for the phone.
    let host_target = std::fs::read_link(d.path().join("root/x")).unwrap();
    assert_eq!(host_target.to_str(), Some("/../../etc"));
}

#[test]
fn read_only_system_through_the_shell() {
    let (d, p) = phone();
    std::fs::create_dir_all(d.path().join("system/bin")).unwrap();
    std::fs::write(d.path().join("system/build.prop"), "ro.a=1\n").unwrap();
    let o = sh(
        &p,
        "cat /system/build.prop; rm /system/build.prop; echo $?; touch /system/new; echo $?; mkdir /system/d; echo $?",
    );
    assert_eq!(o.out(), "ro.a=1\n1\n1\n1\n");
    assert!(
        o.err()
            .contains("rm: /system/build.prop: Read-only file system")
    );
    assert!(d.path().join("system/build.prop").exists());
}

#[test]
fn a_cancelled_script_stops_waiting_and_running() {
    use cph_phone::shell::{Cancel, run_script_with};
    use std::time::{Duration, Instant};
    let (_dir, core) = crate::support::phone();
    for script in ["sleep 100", "while true; do true; done", "sleep 100 | cat"] {
        let cancel = Cancel::new();
        let c = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            c.cancel();
        });
        let started = Instant::now();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let status = run_script_with(
            &core,
            script,
            &mut std::io::empty(),
            &mut out,
            &mut err,
            &cancel,
        );
        t.join().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{script} ran on after cancel"
        );
        assert_ne!(status, 0, "{script}");
    }
}
