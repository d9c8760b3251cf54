//! The phone's commands: output formats and exit codes.

use crate::support::{phone, sh, sh_in};
use cph_phone::{PhoneControl, PhoneCore};
use std::sync::{Arc, Mutex};

#[test]
fn ls_variants() {
    let (_d, p) = phone();
    sh(
        &p,
        "mkdir -p /d/sub; echo hello > /d/b.txt; touch /d/a; touch /d/.dot; ln -s b.txt /d/link",
    );
    assert_eq!(sh(&p, "ls /d").out(), "a\nb.txt\nlink\nsub\n");
    assert_eq!(
        sh(&p, "ls -a /d").out(),
        ".\n..\n.dot\na\nb.txt\nlink\nsub\n"
    );
    assert_eq!(sh(&p, "ls -1d /d").out(), "/d\n");
    let l = sh(&p, "ls -l /d").out();
    let lines: Vec<&str> = l.lines().collect();
    assert!(lines[0].starts_with("total "), "{l}");
    let cols: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&cols[..5], &["-rw-r--r--", "1", "root", "root", "6"], "{l}");
    assert!(lines[2].ends_with(" b.txt"), "{l}");
    assert!(
        lines[3].starts_with("lrwxrwxrwx") && lines[3].ends_with("link -> b.txt"),
        "{l}"
    );
    assert!(lines[4].starts_with("drwx"), "{l}");
    assert_eq!(
        sh(&p, "ls -R /d").out(),
        "/d:\na\nb.txt\nlink\nsub\n\n/d/sub:\n"
    );
    let o = sh(&p, "ls /x /d/a");
    assert_eq!(o.status, 1);
    assert_eq!(o.err(), "ls: /x: No such file or directory\n");
    assert_eq!(o.out(), "/d/a\n");
    let o = sh(&p, "ls -z");
    assert_eq!(o.status, 1);
    assert!(o.err().contains("Unknown option 'z'"));
    assert_eq!(sh(&p, "cd /d; ls sub b.txt").out(), "b.txt\n\nsub:\n");
}

#[test]
fn cat_echo_printf() {
    let (_d, p) = phone();
    assert_eq!(sh_in(&p, "cat", "from stdin").out(), "from stdin");
    assert_eq!(
        sh_in(&p, "echo a > /f; cat /f - /f", "mid\n").out(),
        "a\nmid\na\n"
    );
    let o = sh(&p, "cat /missing");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "cat: /missing: No such file or directory\n")
    );
    let o = sh(&p, "cat /");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "cat: /: Is a directory\n")
    );
    assert_eq!(sh(&p, "echo -n a; echo b").out(), "ab\n");
    assert_eq!(sh(&p, "echo -e 'a\\tb\\nc'").out(), "a\tb\nc\n");
    assert_eq!(sh(&p, "echo 'a\\tb'").out(), "a\\tb\n");
    assert_eq!(
        sh(&p, "printf '%s=%d|%5s|%-3s|%x\\n' a 42 r l 255").out(),
        "a=42|    r|l  |ff\n"
    );
    assert_eq!(sh(&p, "printf '%s\\n' a b c").out(), "a\nb\nc\n");
    assert_eq!(
        sh(&p, "printf '%03d %.2f\\n' 7 3.14159").out(),
        "007 3.14\n"
    );
    assert_eq!(sh(&p, "cat -n /f").out(), "     1\ta\n");
}

#[test]
fn mkdir_rm_rmdir() {
    let (_d, p) = phone();
    let o = sh(&p, "mkdir /a/b");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "mkdir: '/a/b': No such file or directory\n")
    );
    assert_eq!(
        sh(&p, "mkdir -p /a/b/c && mkdir -p /a/b/c && echo ok").out(),
        "ok\n"
    );
    let o = sh(&p, "mkdir /a");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "mkdir: '/a': File exists\n")
    );
    let o = sh(&p, "rm /a");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "rm: /a: Is a directory\n")
    );
    let o = sh(&p, "rmdir /a");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "rmdir: /a: Directory not empty\n")
    );
    let o = sh(&p, "rm /nope");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "rm: /nope: No such file or directory\n")
    );
    assert_eq!(sh(&p, "rm -f /nope; echo $?").out(), "0\n");
    assert_eq!(sh(&p, "rm -rf /a; ls /a; echo $?").out(), "1\n");
    assert_eq!(
        sh(&p, "mkdir -p /x/y/z; rmdir -p /x/y/z; ls /x 2>&1").out(),
        "ls: /x: No such file or directory\n"
    );
    assert_eq!(sh(&p, "mkdir -m 700 /m; stat -c %a /m").out(), "700\n");
}

#[test]
fn cp_mv_ln_touch() {
    let (_d, p) = phone();
    sh(
        &p,
        "mkdir -p /src/in; echo 1 > /src/f; echo 2 > /src/in/g; ln -s f /src/l",
    );
    let o = sh(&p, "cp /src /dst");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "cp: /src: Is a directory\n")
    );
    assert_eq!(
        sh(&p, "cp -r /src /dst; cat /dst/f /dst/in/g; readlink /dst/l").out(),
        "1\n2\nf\n"
    );
    assert_eq!(
        sh(&p, "mkdir /t; cp /src/f /src/in/g /t; ls /t").out(),
        "f\ng\n"
    );
    assert_eq!(
        sh(&p, "mv /t/f /t/h; ls /t; mv /t/h /src/in; ls /src/in").out(),
        "g\nh\ng\nh\n"
    );
    let o = sh(&p, "mv /nope /t");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "mv: /nope: No such file or directory\n")
    );
    let o = sh(&p, "cp -r /src /src/in/deeper");
    assert_eq!(o.status, 1);
    assert_eq!(
        sh(
            &p,
            "ln -s /src/f /ln1; cat /ln1; ln -sf /src/in/g /ln1; cat /ln1"
        )
        .out(),
        "1\n2\n"
    );
    assert_eq!(sh(&p, "ln /src/f /hard; stat -c %h /src/f").out(), "2\n");
    assert_eq!(
        sh(&p, "touch -d @1000 /src/f; stat -c %Y /src/f").out(),
        "1000\n"
    );
    assert_eq!(
        sh(&p, "touch /new; test -f /new && echo made").out(),
        "made\n"
    );
    assert_eq!(
        sh(&p, "touch -c /notmade; test -e /notmade || echo absent").out(),
        "absent\n"
    );
    let o = sh(&p, "cp /src/f /system/f");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "cp: /system/f: Read-only file system\n")
    );
}

#[test]
fn stat_and_chmod() {
    let (_d, p) = phone();
    sh(&p, "echo hello > /f");
    assert_eq!(
        sh(&p, "stat -c '%n %s %a %A %F %U' /f").out(),
        "/f 6 644 -rw-r--r-- regular file root\n"
    );
    assert_eq!(sh(&p, "chmod 755 /f; stat -c %a /f").out(), "755\n");
    assert_eq!(sh(&p, "chmod go-x /f; stat -c %a /f").out(), "744\n");
    assert_eq!(
        sh(&p, "chmod u-w,a+x /f; stat -c %A /f").out(),
        "-r-xr-xr-x\n"
    );
    assert_eq!(sh(&p, "chmod =r /f; stat -c %a /f").out(), "444\n");
    assert_eq!(sh(&p, "chmod 0600 /f; stat -c %a /f").out(), "600\n");
    let o = sh(&p, "chmod 999 /f");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "chmod: invalid mode '999'\n")
    );
    let o = sh(&p, "stat /nope");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "stat: /nope: No such file or directory\n")
    );
    let full = sh(&p, "stat /f").out();
    assert!(full.starts_with("  File: /f\n  Size: 6\t"), "{full}");
    assert!(full.contains("regular file"), "{full}");
    assert_eq!(sh(&p, "ln -s /f /l; stat -c %N /l").out(), "'/l' -> '/f'\n");
}

#[test]
fn find_command() {
    let (_d, p) = phone();
    sh(
        &p,
        "mkdir -p /f/a/b; touch /f/x.txt /f/a/y.txt /f/a/b/z.log; ln -s x.txt /f/link",
    );
    assert_eq!(
        sh(&p, "find /f -name '*.txt' | sort").out(),
        "/f/a/y.txt\n/f/x.txt\n"
    );
    assert_eq!(sh(&p, "find /f -type d | sort").out(), "/f\n/f/a\n/f/a/b\n");
    assert_eq!(sh(&p, "find /f -type l").out(), "/f/link\n");
    assert_eq!(sh(&p, "find /f -maxdepth 1 -type f").out(), "/f/x.txt\n");
    assert_eq!(
        sh(&p, "find /f -name '*.log' -o -name 'y*' | sort").out(),
        "/f/a/b/z.log\n/f/a/y.txt\n"
    );
    assert_eq!(sh(&p, "cd /f; find . -name z.log").out(), "./a/b/z.log\n");
    assert_eq!(
        sh(&p, "find /f ! -type d -name '*.*' | wc -l").out().trim(),
        "3"
    );
    let o = sh(&p, "find /nope");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "find: /nope: No such file or directory\n")
    );
    assert_eq!(
        sh(
            &p,
            "find /f -name '*.log' -delete; find /f -name '*.log' | wc -l"
        )
        .out()
        .trim(),
        "0"
    );
}

#[test]
fn grep_command() {
    let (_d, p) = phone();
    sh(
        &p,
        "mkdir /g; printf 'alpha\\nBeta\\ngamma 42\\nbeta\\n' > /g/t; echo beta > /g/u",
    );
    assert_eq!(sh(&p, "grep beta /g/t").out(), "beta\n");
    assert_eq!(sh(&p, "grep -i beta /g/t").out(), "Beta\nbeta\n");
    assert_eq!(sh(&p, "grep -v a /g/t").out(), "");
    assert_eq!(sh(&p, "grep -c a /g/t").out(), "4\n");
    assert_eq!(sh(&p, "grep -n 'm\\+a' /g/t").out(), "3:gamma 42\n");
    assert_eq!(sh(&p, "grep -E '[0-9]{2}$' /g/t").out(), "gamma 42\n");
    assert_eq!(sh(&p, "grep -o '[0-9][0-9]*' /g/t").out(), "42\n");
    assert_eq!(
        sh(&p, "grep -r beta /g | sort").out(),
        "/g/t:beta\n/g/u:beta\n"
    );
    assert_eq!(sh(&p, "grep -l beta /g/t /g/u").out(), "/g/t\n/g/u\n");
    assert_eq!(sh(&p, "grep -w amm /g/t; echo $?").out(), "1\n");
    assert_eq!(sh(&p, "grep -x beta /g/t").out(), "beta\n");
    assert_eq!(sh(&p, "grep -F 'a.' /g/t; echo $?").out(), "1\n");
    assert_eq!(sh(&p, "grep -q alpha /g/t && echo quiet").out(), "quiet\n");
    assert_eq!(sh_in(&p, "grep -e x -e z", "a\nx\nz\n").out(), "x\nz\n");
    let o = sh(&p, "grep beta /nope");
    assert_eq!(
        (o.status, o.err().as_str()),
        (2, "grep: /nope: No such file or directory\n")
    );
    assert_eq!(sh(&p, "grep -E '(' /g/t").status, 2);
}

#[test]
fn text_filters() {
    let (_d, p) = phone();
    let input = "3\n1\n2\n2\n10\n";
    assert_eq!(sh_in(&p, "head -n 2", input).out(), "3\n1\n");
    assert_eq!(sh_in(&p, "head -2", input).out(), "3\n1\n");
    assert_eq!(sh_in(&p, "head -c 3", input).out(), "3\n1");
    assert_eq!(sh_in(&p, "tail -n 2", input).out(), "2\n10\n");
    assert_eq!(sh_in(&p, "tail -n +4", input).out(), "2\n10\n");
    assert_eq!(sh_in(&p, "tail -c 3", input).out(), "10\n");
    assert_eq!(sh_in(&p, "sort", input).out(), "1\n10\n2\n2\n3\n");
    assert_eq!(sh_in(&p, "sort -n", input).out(), "1\n2\n2\n3\n10\n");
    assert_eq!(sh_in(&p, "sort -rn | head -n 1", input).out(), "10\n");
    assert_eq!(sh_in(&p, "sort -u", input).out(), "1\n10\n2\n3\n");
    assert_eq!(
        sh_in(&p, "sort | uniq -c", "b\na\nb\n").out(),
        "      1 a\n      2 b\n"
    );
    assert_eq!(sh_in(&p, "uniq -d", "a\na\nb\n").out(), "a\n");
    assert_eq!(sh_in(&p, "wc -l", input).out(), "5\n");
    assert_eq!(
        sh(&p, "printf 'a b\\nc\\n' > /w; wc /w").out(),
        "2 3 6 /w\n"
    );
    assert_eq!(sh(&p, "wc -c /w").out(), "6 /w\n");
    assert_eq!(sh_in(&p, "tr a-z A-Z", "hello").out(), "HELLO");
    assert_eq!(sh_in(&p, "tr -d l", "hello").out(), "heo");
    assert_eq!(sh_in(&p, "tr -s ' '", "a   b").out(), "a b");
    assert_eq!(sh_in(&p, "cut -d: -f1,3", "a:b:c:d\n").out(), "a:c\n");
    assert_eq!(sh_in(&p, "cut -c 2-3", "abcdef\n").out(), "bc\n");
    assert_eq!(sh(&p, "seq 3; seq 2 2 6").out(), "1\n2\n3\n2\n4\n6\n");
    assert_eq!(
        sh_in(&p, "tee /tee.out | wc -c; cat /tee.out", "abc").out(),
        "3\nabc"
    );
    assert_eq!(sh_in(&p, "xargs echo got", "a b\nc").out(), "got a b c\n");
    assert_eq!(
        sh(
            &p,
            "basename /a/b/c.txt .txt; dirname /a/b/c.txt; basename /; dirname x"
        )
        .out(),
        "c\n/a/b\n/\n.\n"
    );
    let o = sh(&p, "head /nope");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "head: /nope: No such file or directory\n")
    );
}

#[test]
fn checksums() {
    let (_d, p) = phone();
    sh(&p, "printf abc > /c");
    assert_eq!(
        sh(&p, "md5sum /c").out(),
        "900150983cd24fb0d6963f7d28e17f72  /c\n"
    );
    assert_eq!(
        sh(&p, "sha256sum /c").out(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  /c\n"
    );
    assert_eq!(
        sh_in(&p, "md5sum", "abc").out(),
        "900150983cd24fb0d6963f7d28e17f72  -\n"
    );
    let o = sh(&p, "md5sum /nope");
    assert_eq!(
        (o.status, o.err().as_str()),
        (1, "md5sum: /nope: No such file or directory\n")
    );
}

#[test]
fn space_commands() {
    let (_d, p) = phone();
    let df = sh(&p, "df").out();
    let lines: Vec<&str> = df.lines().collect();
    assert!(lines[0].starts_with("Filesystem"), "{df}");
    assert!(lines.iter().any(|l| l.ends_with(" /")), "{df}");
    assert!(lines.iter().any(|l| l.ends_with(" /system")), "{df}");
    assert!(
        sh(&p, "df -h /system")
            .out()
            .lines()
            .nth(1)
            .unwrap()
            .ends_with("/system")
    );
    sh(&p, "mkdir -p /u/v; printf 12345 > /u/v/f");
    assert_eq!(sh(&p, "du -s /u").out(), "12\t/u\n");
    assert_eq!(sh(&p, "du /u").out(), "8\t/u/v\n12\t/u\n");
    assert_eq!(sh(&p, "du -sh /u").out(), "12K\t/u\n");
    assert_eq!(sh(&p, "du /nope").status, 1);
}

#[test]
fn identity_and_system_info() {
    let (_d, p) = phone();
    assert!(
        sh(&p, "id")
            .out()
            .starts_with("uid=0(root) gid=0(root) groups=0(root)")
    );
    assert_eq!(sh(&p, "id -u; whoami").out(), "0\nroot\n");
    assert_eq!(sh(&p, "uname").out(), "Linux\n");
    assert_eq!(sh(&p, "uname -m").out(), "aarch64\n");
    assert!(sh(&p, "uname -a").out().starts_with("Linux localhost "));
    let ps = sh(&p, "ps -A").out();
    for name in ["init", "zygote64", "system_server", "adbd", " sh"] {
        assert!(ps.contains(name), "{name} missing from\n{ps}");
    }
    assert!(ps.starts_with("USER           PID  PPID"));
    assert_eq!(
        sh(&p, "date -d @0 +%Y-%m-%d_%H:%M:%S").out(),
        "1970-01-01_00:00:00\n"
    );
    assert_eq!(
        sh(&p, "date -u -d @86400").out(),
        "Fri Jan  2 00:00:00 UTC 1970\n"
    );
    assert!(sh(&p, "date +%s").out().trim().parse::<i64>().unwrap() > 1_600_000_000);
    assert_eq!(
        sh(&p, "which ls sh; which nothing; echo $?").out(),
        "/system/bin/ls\n/system/bin/sh\n1\n"
    );
    let o = sh(&p, "sleep 7200");
    assert_eq!(o.status, 1);
    assert_eq!(sh(&p, "sleep 0.01 && echo slept").out(), "slept\n");
    assert_eq!(sh(&p, "sleep abc").status, 1);
    assert_eq!(sh(&p, "true; echo $?; false; echo $?").out(), "0\n1\n");
    assert_eq!(sh(&p, "env | grep '^HOME='").out(), "HOME=/\n");
    assert_eq!(sh(&p, "toybox echo multi").out(), "multi\n");
}

#[test]
fn test_builtin() {
    let (_d, p) = phone();
    sh(
        &p,
        "mkdir /t; touch /t/empty; echo x > /t/full; ln -s full /t/l",
    );
    let cases = [
        ("[ -d /t ]", 0),
        ("[ -f /t ]", 1),
        ("[ -e /nope ]", 1),
        ("[ -s /t/empty ]", 1),
        ("[ -s /t/full ]", 0),
        ("[ -L /t/l ]", 0),
        ("[ -w /system ]", 1),
        ("[ a = a ]", 0),
        ("[ a != a ]", 1),
        ("[ 3 -gt 2 ]", 0),
        ("[ 3 -le 2 ]", 1),
        ("[ -z '' ]", 0),
        ("[ -n '' ]", 1),
        ("[ ! -e /nope ]", 0),
        ("[ -d /t -a -f /t/full ]", 0),
        ("[ -d /nope -o -f /t/full ]", 0),
        ("test abc", 0),
        ("test", 1),
        ("[ x -eq 1 ]", 2),
        ("[ a = a", 2),
    ];
    for (script, want) in cases {
        assert_eq!(sh(&p, script).status, want, "{script}");
    }
}

struct Recorder(Mutex<Vec<String>>);

impl PhoneControl for Recorder {
    fn request_reboot(&self, target: &str) {
        self.0.lock().unwrap().push(target.to_string());
    }
}

#[test]
fn reboot_asks_the_phone() {
    let (d, p) = phone();
    let rec = Arc::new(Recorder(Mutex::new(Vec::new())));
    let core = PhoneCore {
        control: rec.clone(),
        ..p
    };
    assert_eq!(sh(&core, "reboot; reboot bootloader").status, 0);
    assert_eq!(
        *rec.0.lock().unwrap(),
        vec!["".to_string(), "bootloader".to_string()]
    );
    drop(d);
}

#[test]
fn virtual_devices() {
    let (_d, p) = phone();
    assert_eq!(sh(&p, "cat /dev/null; echo $?").out(), "0\n");
    assert_eq!(sh(&p, "head -c 4 /dev/zero | wc -c").out().trim(), "4");
    assert_eq!(sh(&p, "head -c 16 /dev/urandom | wc -c").out().trim(), "16");
}

#[test]
fn android_commands_are_reachable() {
    let (_d, p) = phone();
    // `getprop` comes from the Android command table, not from here.
    let o = sh(&p, "getprop; echo $?");
    assert!(o.out().ends_with("0\n"), "{}", o.out());
    assert!(!o.err().contains("not found"));
}

/// Waits until something listens on `port` of the phone.
fn wait_listening(p: &PhoneCore, port: u16) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !p.net.is_listening(port) {
        assert!(std::time::Instant::now() < end, "nothing listens on {port}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn nc_listens_for_one_connection_and_relays_both_ways() {
    use std::io::{Read, Write};
    let (_d, p) = phone();
    let p = Arc::new(p);
    // Nothing listens yet: refused.
    assert_eq!(
        p.net.connect(20000).err().map(|e| e.kind()),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    let core = p.clone();
    let t = std::thread::spawn(move || {
        cph_phone::shell::run_capture(
            &core,
            "echo hello-from-phone | nc -l -p 20000; echo rc=$?",
            b"",
        )
    });
    wait_listening(&p, 20000);
    let mut c = p.net.connect(20000).unwrap();
    // One connection per listener: a second one is refused.
    assert!(p.net.connect(20000).is_err());
    c.writer.write_all(b"hello-from-host\n").unwrap();
    drop(c.writer);
    let mut got = String::new();
    c.reader.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hello-from-phone\n");
    let o = t.join().unwrap();
    assert_eq!(o.out(), "hello-from-host\nrc=0\n", "{}", o.err());
    assert!(!p.net.is_listening(20000));

    // `nc -l PORT` and stdin from the shell's own input.
    let core = p.clone();
    let t = std::thread::spawn(move || {
        cph_phone::shell::run_capture(&core, "nc -l 20001", b"from-stdin")
    });
    wait_listening(&p, 20001);
    let mut c = p.net.connect(20001).unwrap();
    drop(c.writer);
    let mut got = String::new();
    c.reader.read_to_string(&mut got).unwrap();
    assert_eq!(got, "from-stdin");
    assert_eq!(t.join().unwrap().status, 0);
}

#[test]
fn nc_refuses_bad_use_and_taken_ports() {
    let (_d, p) = phone();
    let o = sh(&p, "nc 10.0.0.1 80");
    assert_eq!(o.status, 1);
    assert_eq!(o.err(), "nc: only listening (-l) is supported\n");
    let o = sh(&p, "nc -l -p 0");
    assert_eq!((o.status, o.err()), (1, "nc: bad port '0'\n".to_string()));
    let o = sh(&p, "nc -l -p x");
    assert_eq!(o.status, 1);
    let _held = p.net.listen(20002).unwrap();
    let o = sh(&p, "nc -l -p 20002");
    assert_eq!(o.status, 1);
    assert_eq!(o.err(), "nc: bind: Address already in use\n");
}

#[test]
fn nc_stops_when_its_client_goes_away() {
    let (_d, p) = phone();
    let p = Arc::new(p);
    let cancel = cph_phone::shell::Cancel::new();
    // Waiting for a connection.
    let (core, c2) = (p.clone(), cancel.clone());
    let t = std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        cph_phone::shell::run_script_with(
            &core,
            "nc -l -p 20003",
            &mut &b""[..],
            &mut o,
            &mut e,
            &c2,
        )
    });
    wait_listening(&p, 20003);
    cancel.cancel();
    assert_eq!(t.join().unwrap(), cph_phone::shell::HUNG_UP);
    assert!(!p.net.is_listening(20003));
    // Relaying a connection whose peer sends nothing and never closes.
    let cancel = cph_phone::shell::Cancel::new();
    let (core, c2) = (p.clone(), cancel.clone());
    let t = std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        cph_phone::shell::run_script_with(
            &core,
            "nc -l -p 20004",
            &mut &b""[..],
            &mut o,
            &mut e,
            &c2,
        )
    });
    wait_listening(&p, 20004);
    let mut c = p.net.connect(20004).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    cancel.cancel();
    assert_eq!(t.join().unwrap(), cph_phone::shell::HUNG_UP);
    let mut rest = Vec::new();
    use std::io::Read;
    c.reader.read_to_end(&mut rest).unwrap();
}
