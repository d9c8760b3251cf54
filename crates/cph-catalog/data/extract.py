#!/usr/bin/env python3
"""Generate the cph-catalog data files from the text of the CPH API reference (v18).

Usage: extract.py <seed.txt> [<output dir>]

The seed is the plain text extracted from the PDF edition of the API reference:
table rows are wrapped over several lines and page headers/footers interrupt them.
The output directory defaults to the directory holding this script.

Files written: errors.json, phone_properties.json, phone_models.json,
server_models.json, phone_images.json, actions.json.
"""

import hashlib
import json
import os
import re
import sys

CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef“”‘’]")
IDENT = re.compile(r"[A-Za-z0-9_]+")


def die(msg):
    print("extract.py: " + msg, file=sys.stderr)
    sys.exit(1)


# --------------------------------------------------------------------------
# generic helpers
# --------------------------------------------------------------------------


def find_line(lines, pred, start=0, what="marker"):
    for i in range(start, len(lines)):
        if pred(lines[i]):
            return i
    die("cannot find " + what)


def strip_page_noise(lines):
    """Drop page footers ("云手机服务器" / "API 参考 ..." / "文档版本 ...") and
    repeated table headers; strip the leading blank left by a page break."""
    out = []
    i = 0
    while i < len(lines):
        raw = lines[i]
        s = raw.strip()
        if s == "云手机服务器" and i + 1 < len(lines) and lines[i + 1].strip().startswith("API 参考"):
            i += 2
            continue
        if s.startswith("文档版本 18 (") and "版权所有" in s:
            i += 1
            continue
        out.append(raw.lstrip(" ").rstrip("\n").rstrip())
        i += 1
    return out


def groups_of(lines):
    """Split lines into groups separated by blank lines (empty groups dropped)."""
    groups, cur = [], []
    for line in lines:
        if line.strip() == "":
            if cur:
                groups.append(cur)
                cur = []
        else:
            cur.append(line)
    if cur:
        groups.append(cur)
    return groups


def build_vocab(lines):
    """All identifier-like tokens, and those seen at least once inside a line
    (neither first nor last on it), which therefore are whole words."""
    all_, whole = set(), set()
    for line in lines:
        line = line.strip()
        toks = list(IDENT.finditer(line))
        for t in toks:
            all_.add(t.group(0))
            if t.start() > 0 and t.end() < len(line):
                whole.add(t.group(0))
    return {"all": all_, "whole": whole}


JOIN_LOG = []


def is_identifierish(tok):
    return "_" in tok or re.search(r"[a-z][A-Z]", tok) is not None


def glue(prev, nxt, vocab, extra_words, zh):
    """Decide how two wrapped lines are joined: '' (no space) or ' '."""
    if not prev or not nxt:
        return ""
    a, b = prev[-1], nxt[0]
    if zh:
        # Chinese text is joined without spaces, except between two
        # ASCII words that really are separate words ("VPC" + "ID").
        if re.search(r" [A-Za-z0-9_]+$", prev) and CJK.match(b):
            # "请检查 public_ip" + "结构体。": the line was wrapped at a space
            return " "
        if not (a.isascii() and a.isalnum() and b.isascii() and b.isalnum()):
            return ""
    m1 = re.search(r"[A-Za-z0-9_]+$", prev)
    m2 = re.match(r"[A-Za-z0-9_]+", nxt)
    if prev.endswith(("_", "/", "-")) or nxt.startswith(("]", ")", ".", ",", "”")):
        return ""
    if nxt.startswith("_") and m1 and is_identifierish(m1.group(0)):
        return ""
    if m1 and m2:
        left, right = m1.group(0), m2.group(0)
        joined = left + right
        whole = vocab["whole"]
        if is_identifierish(joined) and (joined in vocab["all"] or joined in extra_words) and (
            left not in whole or right not in whole or joined in extra_words
        ):
            JOIN_LOG.append((left, right, "joined"))
            return ""
        if is_identifierish(left):
            JOIN_LOG.append((left, right, "space"))
    return " "


def join_lines(lines, vocab, extra_words, zh):
    out = ""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if not out:
            out = line
        else:
            out = out + glue(out, line, vocab, extra_words, zh) + line
    return out


# --------------------------------------------------------------------------
# 7.2 error codes
# --------------------------------------------------------------------------

# Identifiers that the PDF wrapped in the middle and that do not occur
# elsewhere in the reference as a whole word.
EXTRA_WORDS = {
    "availVolumeSize",
    "hide_navigate",
    "band_width_share_type",
    "band_width_charge_mode",
    "band_width_size",
    "band_width_id",
    "port_name_list",
    "pre_install_app",
    "is_migrate_property",
    "image_sub_type",
    "system_parameter",
    "gsm_country",
    "gsm_number",
    "gsm_operator",
    "sim_country",
    "sim_number",
    "sim_operator",
    "phone_brand",
    "mac_address",
    "charging_mode",
    "ipv6_bandwidth",
}

# Hand corrections after checking the extraction against the text.
ERROR_OVERRIDES = {
    # (none needed at the moment; keep the mechanism for re-runs)
}


def split_zh_inline(line):
    """'系统繁忙。 请稍后重试。' -> ('系统繁忙。', '请稍后重试。')"""
    idx = line.find("。 ")
    if idx < 0:
        return None
    return line[: idx + 1], line[idx + 2 :]


def extract_errors(lines, vocab):
    start = find_line(lines, lambda l: l.strip() == "7.2 错误码", what="7.2 错误码")
    end = find_line(lines, lambda l: l.strip().startswith("7.3 获取项目"), start, "7.3")
    body = strip_page_noise(lines[start + 1 : end])
    header = re.compile(r"^状态码 错误码 错误信息 描述 处理措施$")
    body = [l for l in body if not header.match(l.strip())]
    rec_re = re.compile(r"^(\d{3}) (CPS\.\d{4})(?: (.*))?$")
    starts = [i for i, l in enumerate(body) if rec_re.match(l)]
    entries = []
    problems = []
    for n, si in enumerate(starts):
        ei = starts[n + 1] if n + 1 < len(starts) else len(body)
        rec = body[si:ei]
        m = rec_re.match(rec[0])
        status, code = int(m.group(1)), m.group(2)
        rec = [m.group(3) or ""] + rec[1:]
        groups = groups_of(rec)
        # English: first group, up to the first token containing CJK.
        en_lines, rest = [], []
        g0 = groups[0]
        for li, line in enumerate(g0):
            if CJK.search(line):
                toks = line.split(" ")
                k = next(i for i, t in enumerate(toks) if CJK.search(t))
                if toks[:k]:
                    en_lines.append(" ".join(toks[:k]))
                rest = [" ".join(toks[k:])] + g0[li + 1 :]
                break
            en_lines.append(line)
        zh_groups = ([rest] if rest else []) + groups[1:]
        if len(zh_groups) == 1:
            sp = split_zh_inline(zh_groups[0][0])
            if sp is None:
                problems.append((code, "cannot split message/action", zh_groups))
                continue
            zh_groups = [[sp[0]], [sp[1]] + zh_groups[0][1:]]
        if len(zh_groups) != 2:
            problems.append((code, "unexpected layout", zh_groups))
            continue
        entry = {
            "status": status,
            "code": code,
            "message": join_lines(en_lines, vocab, EXTRA_WORDS, zh=False),
            "message_zh": join_lines(zh_groups[0], vocab, EXTRA_WORDS, zh=True),
            "action_zh": join_lines(zh_groups[1], vocab, EXTRA_WORDS, zh=True),
        }
        entry.update(ERROR_OVERRIDES.get(code, {}))
        entries.append(entry)
    for p in problems:
        print("ERROR-PARSE", p, file=sys.stderr)
    codes = [e["code"] for e in entries]
    if len(set(codes)) != len(codes):
        die("duplicate error codes")
    for e in entries:
        msg = e["message"]
        odd = (
            not msg
            or re.search(r"[A-Za-z0-9]_ |\s{2}|\[ | \]", msg)
            or CJK.search(msg)
            or not re.search(r"[.!)}0-9A-Za-z]$", msg)
        )
        if odd and e["code"] not in ("CPS.0306",):
            print("CHECK message", e["code"], repr(msg), file=sys.stderr)
    return entries


# --------------------------------------------------------------------------
# A.1 phone properties
# --------------------------------------------------------------------------

KEY_LINE = re.compile(r"^[a-z0-9_.\-]+$")
TYPE_START = re.compile(r"^(Integer|String)(?: (.*))?$")
CONS_SPLIT = re.compile(r"^(.*\S) ((?:-?\d+表示|-?\d+~|非空|不多于|已弃用|只对|只能|http|取值).*)$")

# Whether a property takes effect only after the phone restarts.  The A.1
# table itself does not carry this; see "_derived" in the output file.
RESTART_STATED = {
    # CPH user guide, "使用AOSP功能": "重启生效"
    "com.cph.mainkeys": True,
    "disable.status.bar": True,
    "com.cph.disable_fb_permission": True,
    "ro.com.cph.non_root": True,
    # CPH user guide, "使用AOSP功能": "设置立即生效" / "立即生效"
    "ro.permission.changed": False,
    "ro.install.auto": False,
    "ro.com.cph.notification_disable": False,
    "ro.com.cph.toast_enable": False,
}


def needs_restart_for(key, desc):
    if key in RESTART_STATED:
        return RESTART_STATED[key]
    if "首次启动" in desc:
        return True
    if key.startswith(("ro.", "persist.", "qemu.")):
        return True
    if key.startswith("com.cph.cg."):
        return True
    return False


CHARSET_WORDS = [
    ("十进制数字", "digit"),
    ("数字", "digit"),
    ("大小写英文字母", "alpha"),
    ("大小写字母", "alpha"),
    ("中文", "han"),
    ("空格", "space"),
]

CHARSET_PUNCT = [
    ("反斜线\\", "\\"),
    ("中划线-", "-"),
    ("中划线", "-"),
    ("下划线_", "_"),
    ("斜线/", "/"),
    ("点.", "."),
    ("冒号:", ":"),
    ("逗号,", ","),
    ("英文逗号", ","),
    ("英文左括号(", "("),
    ("英文右括号)", ")"),
    ("@", "@"),
    ("#", "#"),
]


def parse_charset(text):
    """'数字、大小写字母、中划线-、...和空格' -> (classes, extra chars)"""
    t = text.replace(" ", "")
    classes, extra = [], ""
    for word, cls in CHARSET_WORDS:
        w = word.replace(" ", "")
        if w in t:
            if cls not in classes:
                classes.append(cls)
            t = t.replace(w, "")
    for word, ch in CHARSET_PUNCT:
        if word in t:
            if ch not in extra:
                extra += ch
            t = t.replace(word, "", 1)
    leftover = re.sub(r"[、和]", "", t)
    if leftover:
        die("unparsed character-set words: " + leftover + " in " + text)
    return classes, extra


def charset_regex(classes, extra):
    parts = ""
    if "digit" in classes:
        parts += "0-9"
    if "alpha" in classes:
        parts += "a-zA-Z"
    if "han" in classes:
        parts += "\\x{3400}-\\x{4DBF}\\x{4E00}-\\x{9FFF}"
    if "space" in classes:
        parts += " "
    for ch in extra:
        if ch in "\\-]^[":
            parts += "\\" + ch
        else:
            parts += ch
    return "[" + parts + "]"


def derive_rules(key, typ, desc, cons):
    """Turn the 约束 column text into machine-checkable rules."""
    r = {}
    c = cons.replace(" ", "")
    if "已弃用" in c:
        r["deprecated"] = True
        return r
    m = re.search(r"^只对游戏型手机生效", c)
    if m:
        r["game_only"] = True
    # "0表示..., 1表示..." -> enum
    vals = re.findall(r"(?:^|[，；。,]|\n|生效，)(-?\d+)表示", c)
    if vals and "取值范围" not in c:
        if typ == "integer":
            r["enum"] = [int(v) for v in vals]
        else:
            r["enum"] = [v for v in vals]
    if c.startswith("非空"):
        r["min_len"] = 1
    m = re.search(r"不多于(\d+)个字符", c)
    if m:
        r["max_len"] = int(m.group(1))
    m = re.search(r"^(\d+)~(\d+)个字符", c)
    if m:
        r["min_len"], r["max_len"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"长度不超过(\d+)", c)
    if m:
        r["max_len"] = int(m.group(1))
    m = re.search(r"只能由(.+?)组成", c)
    if m:
        classes, extra = parse_charset(m.group(1))
        r["charset"] = classes
        r["charset_extra"] = extra
        r["pattern"] = "^" + charset_regex(classes, extra) + "*$"
    m = re.search(r"http或者https开头，包含\[(.+?)\]", c)
    if m:
        inner = m.group(1)
        classes, extra = [], ""
        if "a-zA-Z" in inner:
            classes.append("alpha")
            inner = inner.replace("a-zA-Z", "")
        if "0-9" in inner:
            classes.append("digit")
            inner = inner.replace("0-9", "")
        extra = inner
        r["prefixes"] = ["http://", "https://"]
        r["charset"] = classes
        r["charset_extra"] = extra
        r["pattern"] = "^https?://" + charset_regex(classes, extra) + "*$"
    m = re.search(r"取值范围：(\d+)~(\d+)", c)
    if m:
        r["min"], r["max"] = int(m.group(1)), int(m.group(2))
        r["charset"], r["charset_extra"] = ["digit"], ""
        extras = re.findall(r"(-\d+)表示", c)
        if extras:
            r["extra_values"] = extras if typ == "string" else [int(x) for x in extras]
        alts = "|".join(extras)
        r["pattern"] = "^(" + (alts + "|" if alts else "") + "[0-9]+)$"
    m = re.search(r"^(\d+)~(\d+)之间的整数", c)
    if m:
        r["min"], r["max"] = int(m.group(1)), int(m.group(2))
        r["charset"], r["charset_extra"] = ["digit"], ""
        r["pattern"] = "^[0-9]+$"
    m = re.search(r"([a-z0-9.]+)规格的手机不支持", c.replace("\n", ""))
    if m:
        r["unsupported_phone_models"] = [m.group(1)]
    if "min" in r and typ == "string":
        r["numeric_string"] = True
    return r


# Constraint text that contradicts the stated default value; see "_derived".
PROPERTY_ADJUST = {
    # Stated: letters and commas only; but the stated default 46000 is digits
    # (an MCC+MNC code). Digits are accepted in addition.
    "gsm.sim.operator.numeric": {"charset": ["alpha", "digit"]},
    "gsm.operator.numeric": {"charset": ["alpha", "digit"]},
}


def parse_default(desc, typ):
    m = re.search(r"默认(?:为|值为)\s*([A-Za-z0-9_.\-]+)", desc)
    if not m:
        return None
    v = m.group(1).rstrip(".")
    if typ == "integer":
        return int(v)
    return v


def extract_properties(lines):
    start = find_line(lines, lambda l: l.strip() == "A.1 云手机属性列表", what="A.1")
    end = find_line(lines, lambda l: l.strip() == "A.2 云手机规格列表", start, "A.2")
    body = strip_page_noise(lines[start + 1 : end])
    notes_end = find_line(body, lambda l: l.startswith("名称 参数类"), what="A.1 header")
    notes = [l[2:] for l in body[:notes_end] if l.startswith("● ")]
    body = body[notes_end:]
    # drop the repeated table header: "名称 参数类" / "型" / "" / "说明 约束"
    cleaned = []
    i = 0
    while i < len(body):
        s = body[i].strip()
        if s == "名称 参数类":
            i += 2
            continue
        if s == "说明 约束":
            i += 1
            continue
        cleaned.append(body[i])
        i += 1
    groups = groups_of(cleaned)
    rows = []  # each: [key_lines, type, desc_lines, cons_lines]
    cur = None
    for g in groups:
        first = g[0].strip()
        if all(KEY_LINE.match(x.strip()) for x in g):
            cur = {"key": "".join(x.strip() for x in g), "type": None, "desc": [], "cons": []}
            rows.append(cur)
            continue
        m = re.match(r"^([a-z0-9_.\-]+) (Integer|String) (.*)$", first)
        if m:  # key, type and description on one line
            cur = {"key": m.group(1), "type": m.group(2), "desc": [m.group(3)] + g[1:], "cons": []}
            rows.append(cur)
            continue
        m = TYPE_START.match(first)
        if m and cur is not None and cur["type"] is None:
            cur["type"] = m.group(1)
            cur["desc"] = [m.group(2) or ""] + g[1:]
            continue
        if first == "":
            continue
        if cur is None:
            die("A.1: text before first key: " + first)
        cur["cons"].extend(g)
        cur["cons"].append("")
    props = []
    for row in rows:
        typ = {"Integer": "integer", "String": "string"}[row["type"]]
        desc_lines = row["desc"]
        cons_lines = list(row["cons"])
        # The description and constraint columns share lines when the
        # description is short: "是否非root，默认为1。 0表示root，1表示非root。",
        # "GPU型号 已弃用", "手机号码。 不多于20个字符，...".  Split at the first
        # line holding "<description> <constraint start>".
        for li, line in enumerate(desc_lines):
            m = CONS_SPLIT.match(line)
            if m:
                cons_lines = [m.group(2)] + desc_lines[li + 1 :] + [""] + cons_lines
                desc_lines = desc_lines[:li] + [m.group(1)]
                break
        desc = join_prop_text(desc_lines)
        cons = join_prop_text(cons_lines)
        p = {"key": row["key"], "type": typ, "description_zh": desc, "constraint_zh": cons}
        d = parse_default(desc, typ)
        if d is not None:
            p["default"] = d
        rules = derive_rules(row["key"], typ, desc, cons)
        rules.update(PROPERTY_ADJUST.get(row["key"], {}))
        if "charset" in rules:
            if "prefixes" in rules:
                rules["pattern"] = "^https?://" + charset_regex(rules["charset"], rules["charset_extra"]) + "*$"
            elif "min" not in rules:
                rules["pattern"] = "^" + charset_regex(rules["charset"], rules["charset_extra"]) + "*$"
        p.update(rules)
        p.setdefault("deprecated", False)
        p["needs_restart"] = needs_restart_for(row["key"], desc)
        props.append(p)
    return notes, props


def join_prop_text(lines):
    """Join a cell of the property table.  Paragraphs (blank-line separated)
    are joined with a newline; wrapped lines inside a paragraph are joined
    without a space unless both sides are ASCII words."""
    paras = groups_of(lines)
    out = []
    for para in paras:
        s = ""
        for line in para:
            line = line.strip()
            if not s:
                s = line
                continue
            a, b = s[-1], line[0]
            if a.isascii() and a.isalnum() and b.isascii() and b.isalnum() and not s.endswith("_"):
                # wrapped identifiers: key names are never split by spaces
                left = re.search(r"[A-Za-z0-9_.]+$", s).group(0)
                if "." in left or "_" in left:
                    s += line
                else:
                    s += " " + line
            else:
                s += line
        out.append(s)
    return "\n".join(out)


# --------------------------------------------------------------------------
# JSON examples embedded in the text
# --------------------------------------------------------------------------


def json_example_after(lines, marker, first_key):
    """Parse the first JSON example following the section heading `marker`
    whose first member is `first_key`.  Line breaks inside string literals
    (PDF wrapping) are removed."""
    i = find_line(lines, lambda l: l.strip() == marker, what=marker)
    j = None
    for k in range(i, len(lines)):
        if lines[k].strip() == "{" and k + 1 < len(lines) and lines[k + 1].strip().startswith('"' + first_key + '"'):
            j = k
            break
    if j is None:
        die("no JSON example for " + marker)
    text = "\n".join(l.rstrip("\n") for l in lines[j:])
    out, depth, in_str, esc = [], 0, False, False
    for ch in text:
        if in_str:
            if ch == "\n":
                continue
            out.append(ch)
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        out.append(ch)
        if ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                break
    return json.loads("".join(out))


# --------------------------------------------------------------------------
# A.2 / A.3 models
# --------------------------------------------------------------------------


def extract_phone_model_table(lines):
    start = find_line(lines, lambda l: l.strip() == "A.2 云手机规格列表", what="A.2")
    end = find_line(lines, lambda l: l.strip() == "A.3 服务器规格列表", start, "A.3")
    body = strip_page_noise(lines[start + 1 : end])
    rows = []
    pat = re.compile(
        r"^(\S+) 手机开数 (\d+)，CPU (\d+)U，Memory (\d+)GB，(\d+)P (\d+)fps$"
    )
    for l in body:
        m = pat.match(l.strip())
        if m:
            rows.append(
                {
                    "phone_model_name": m.group(1),
                    "phone_capacity": int(m.group(2)),
                    "cpu": int(m.group(3)),
                    "memory_gb": int(m.group(4)),
                    "p": int(m.group(5)),
                    "fps": int(m.group(6)),
                }
            )
        elif l.strip() and l.strip() not in ("规格名称 规格说明",):
            die("A.2: unparsed line: " + l)
    return rows


def extract_server_model_table(lines):
    start = find_line(lines, lambda l: l.strip() == "A.3 服务器规格列表", what="A.3")
    end = find_line(lines, lambda l: l.strip() == "B 修订记录", start, "B")
    body = strip_page_noise(lines[start + 1 : end])
    rows = []
    for g in groups_of(body):
        text = g[0].strip()
        for cont in g[1:]:
            cont = cont.strip()
            # "... 800G" + "SSD，..." / "网卡2 x" + "2*10GE，..."
            text += " " + cont
        if text == "规格名称 规格说明":
            continue
        name, spec = text.split(" ", 1)
        m = re.match(r"^CPU (\d+)U，Memory (\d+)G，(.*)$", spec)
        if not m:
            die("A.3: unparsed row: " + text)
        rest = m.group(3).split("，")
        disk = rest[0]
        if disk.startswith("Disk "):
            disk = disk[5:]
        nic = rest[1]
        if nic.startswith("网卡"):
            nic = nic[2:]
        rows.append(
            {
                "server_model_name": name,
                "cpu": int(m.group(1)),
                "memory": int(m.group(2)),
                "disk": disk,
                "local_disk": disk != "无本地盘",
                "network_interface": nic,
                "cloud_game_software": "云手游接入软件" in rest[2:],
                "source_zh": spec,
            }
        )
    return rows


def image_id_for(name):
    return hashlib.md5(("cph-builtin-image/" + name).encode()).hexdigest()


def build_models(lines):
    srv_example = json_example_after(lines, "5.1.3 查询云手机服务器规格列表", "request_id")
    ph_example = json_example_after(lines, "5.3.3 查询云手机规格列表", "phone_models")
    img_example = json_example_after(lines, "5.3.4 查询手机镜像", "phone_images")
    a3 = extract_server_model_table(lines)
    a2 = extract_phone_model_table(lines)

    ex_srv = {s["server_model_name"]: s for s in srv_example["server_models"]}

    # ---------------- server models ----------------
    server_models = []
    derived_server = {}
    for row in a3:
        name = row["server_model_name"]
        family = name.split(".")[1]
        product_type = 1 if name.endswith(".cg") else 0
        if name in ex_srv:
            ex = ex_srv[name]
            sm = {
                "server_model_name": name,
                "server_type": ex["server_type"],
                "cpu": ex["cpu"],
                "memory": ex["memory"],
                "extend_spec": dict(ex["extend_spec"]),
                "disk_max_num": 0,
                "product_type": ex["product_type"],
                "free_size": ex["free_size"],
            }
            sm["extend_spec"]["os_volume"] = {"size": 0, "volume_type": "LOCAL"}
        else:
            hi1616 = family == "rx1"
            sm = {
                "server_model_name": name,
                "server_type": "Hi1616" if hi1616 else "Hi1620",
                "cpu": row["cpu"],
                "memory": row["memory"],
                "extend_spec": {
                    "cpu": "Hi1616(2*32Core*2.4GHz)" if hi1616 else "Hi1620(2*64Core*2.6GHz)",
                    "memory": "DDR4 RAM",
                    "disk": row["disk"],
                    "network_interface": row["network_interface"],
                    "gpu": "3*WX5100" if hi1616 else "4*WX5100",
                    "bms_flavor": name + ".ondemand",
                    "gpu_count": 3 if hi1616 else 4,
                    "numa_count": 4,
                    "os_volume": {"size": 0, "volume_type": "LOCAL"}
                    if row["local_disk"]
                    else {"size": 100, "volume_type": "GPSSD"},
                },
                "disk_max_num": 0 if row["local_disk"] else 128,
                "product_type": product_type,
                "free_size": 0,
            }
        # The appendix is authoritative for cpu/memory/disk/nic.
        if sm["cpu"] != row["cpu"] or sm["memory"] != row["memory"]:
            die("A.3 and 5.1.3 disagree for " + name)
        sm["extend_spec"]["disk"] = row["disk"]
        sm["extend_spec"]["network_interface"] = row["network_interface"]
        sm["family"] = family
        sm["local_disk"] = row["local_disk"]
        sm["spec_zh"] = row["source_zh"]
        server_models.append(sm)
        derived_server[name] = sm

    # ---------------- phone images ----------------
    images = []
    android_of = {"AOSP7.0.0": ("7.0", 24), "AOSP7.1.1": ("7.1.1", 25)}
    for im in img_example["phone_images"]:
        rel, sdk = android_of[im["os_name"]]
        e = dict(im)
        e["is_support_encrypt"] = False
        e["receive_status"] = 1
        e["android_version"] = rel
        e["sdk"] = sdk
        images.append(e)
    # The image of the 5.1.4 request example (a physical.kg1.4xlarge.cp server).
    buy = json_example_after(lines, "5.1.4 购买云手机服务器", "server_name")
    images.append(
        {
            "image_name": "AOSP",
            "os_type": "aosp",
            "is_public": 1,
            "os_name": "AOSP7.1.1",
            "image_label": "cloud_phone_1620",
            "image_id": buy["image_id"],
            "is_support_encrypt": False,
            "receive_status": 1,
            "android_version": "7.1.1",
            "sdk": 25,
        }
    )
    for label, os_name, rel, sdk in [
        ("cloud_phone_1620", "AOSP9.0.0", "9", 28),
        ("cloud_phone_1620", "AOSP11.0.0", "11", 30),
        ("cloud_game_1620", "AOSP9.0.0", "9", 28),
        ("cloud_game_1620", "AOSP11.0.0", "11", 30),
    ]:
        images.append(
            {
                "image_name": "AOSP",
                "os_type": "aosp",
                "is_public": 1,
                "os_name": os_name,
                "image_label": label,
                "image_id": image_id_for(label + "/" + os_name),
                "is_support_encrypt": sdk >= 30,
                "receive_status": 1,
                "android_version": rel,
                "sdk": sdk,
            }
        )

    # ---------------- phone models ----------------
    def dpi_of(res):
        w = int(res.split("x")[0])
        return {540: 240, 720: 320, 1080: 480}[w]

    phone_models = []
    for ex in ph_example["phone_models"]:
        pm = dict(ex)
        pm["fps"] = str(ex["render_fps"])
        pm["dpi"] = dpi_of(ex["resolution"])
        pm["phone_model_version"] = 0
        pm["volume_mode"] = 0
        phone_models.append(pm)
    series_server = {}
    for sm in server_models:
        if sm["product_type"] == 0:
            series_server.setdefault(sm["family"], sm["server_model_name"])
    for row in a2:
        name = row["phone_model_name"]
        gen = re.match(r"^rc(\d+)\.", name).group(1)
        server = series_server["rx" + gen]
        sm = derived_server[server]
        res = {720: "720x1280", 1080: "1080x1920"}[row["p"]]
        label = "cloud_phone" if sm["server_type"] == "Hi1616" else "cloud_phone_1620"
        phone_models.append(
            {
                "server_model_name": server,
                "phone_model_name": name,
                "status": 1,
                "cpu": row["cpu"],
                "memory": row["memory_gb"] * 1024,
                "disk": 64,
                "resolution": res,
                "render_fps": row["fps"],
                "stream_fps": row["fps"],
                "extend_spec": json.dumps({"eip_count": 1, "vip_count": 1}),
                "spec_code": name,
                "phone_capacity": row["phone_capacity"],
                "image_label": label,
                "product_type": 0,
                "phone_model_version": 1,
                "dpi": dpi_of(res),
                "fps": str(row["fps"]),
                "volume_mode": 0 if sm["local_disk"] else 1,
            }
        )
    # Models named by the request/response examples of 5.1 for the Kunpeng
    # servers, and one cloud-game model for physical.rx1.xlarge.cg.
    extra = [
        ("physical.kg1.4xlarge.cp", "kg1.cp.c20.d64SSD.e1v1", 20, 64, "cloud_phone_1620", 0),
        ("physical.kg1.4xlarge.cg", "kg1.cg.c40.d30SSD.e1v1", 40, 30, "cloud_game_1620", 1),
        ("physical.rx1.xlarge.cg", "rx1.cg.c60.d10.e1v1", 60, 10, "cloud_game", 1),
    ]
    for server, name, cap, disk, label, ptype in extra:
        sm = derived_server[server]
        phone_models.append(
            {
                "server_model_name": server,
                "phone_model_name": name,
                "status": 1,
                "cpu": 2 if cap >= 40 else 4,
                "memory": 3584 if cap >= 40 else 8192,
                "disk": disk,
                "resolution": "720x1280",
                "render_fps": 30 if cap >= 40 else 60,
                "stream_fps": 30 if cap >= 40 else 60,
                "extend_spec": json.dumps({"eip_count": 1, "vip_count": 1}),
                "spec_code": name,
                "phone_capacity": cap,
                "image_label": label,
                "product_type": ptype,
                "phone_model_version": 0,
                "dpi": 320,
                "fps": str(30 if cap >= 40 else 60),
                "volume_mode": 0 if sm["local_disk"] else 1,
            }
        )

    for sm in server_models:
        del sm["local_disk"]
    return server_models, phone_models, images


# --------------------------------------------------------------------------
# 6.1 actions
# --------------------------------------------------------------------------


def extract_actions(lines):
    start = find_line(lines, lambda l: l.strip() == "6.1 权限及授权项说明", what="6.1")
    end = find_line(lines, lambda l: l.strip() == "7 公共参数", start, "7")
    body = strip_page_noise(lines[start + 1 : end])
    groups = groups_of(body)
    actions = []
    table = None
    for gi, g in enumerate(groups):
        first = g[0].strip()
        m = re.match(r"^表 6-\d+ (.+)$", first)
        if m:
            table = m.group(1)
            continue
        m = re.match(r"^(GET|POST|PUT|DELETE|PATCH) (\S+)$", first)
        if not m:
            continue
        path = m.group(2) + "".join(x.strip() for x in g[1:])
        perm = "".join(x.strip() for x in groups[gi - 1])
        agroup = groups[gi + 1]
        atext = "".join(x.strip() for x in agroup)
        am = re.match(r"^(cph:[a-zA-Z]+:[a-zA-Z]+)(.*)$", atext)
        if not am:
            die("6.1: no action after " + path)
        flags = re.findall(r"[√x×]", am.group(2))
        actions.append(
            {
                "action": am.group(1),
                "method": m.group(1),
                "path": path,
                "permission_zh": perm,
                "category_zh": table,
                "iam_project": flags[0] == "√" if flags else True,
                "enterprise_project": flags[1] == "√" if len(flags) > 1 else False,
            }
        )
    return actions


# --------------------------------------------------------------------------


def dump(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


def main():
    if len(sys.argv) < 2:
        die("usage: extract.py <seed.txt> [<output dir>]")
    seed = sys.argv[1]
    outdir = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.abspath(__file__))
    with open(seed, encoding="utf-8") as f:
        lines = f.read().split("\n")

    err_start = find_line(lines, lambda l: l.strip() == "7.2 错误码", what="7.2")
    err_end = find_line(lines, lambda l: l.strip().startswith("7.3 获取项目"), err_start, "7.3")
    vocab = build_vocab(lines[:err_start] + lines[err_end:])

    errors = extract_errors(lines, vocab)
    for left, right, how in sorted(set(JOIN_LOG)):
        print("JOIN %-8s %s | %s" % (how, left, right), file=sys.stderr)
    print("errors: %d" % len(errors), file=sys.stderr)

    notes, props = extract_properties(lines)
    server_models, phone_models, images = build_models(lines)
    actions = extract_actions(lines)

    dump(os.path.join(outdir, "errors.json"), errors)
    dump(
        os.path.join(outdir, "phone_properties.json"),
        {
            "_source": "CPH API reference v18, appendix A.1",
            "_notes_zh": ["属性参数都为非必选且可以修改。"] + notes,
            "_derived": [
                "needs_restart: the A.1 table does not say which properties need a restart "
                "(5.3.9 only says some do). Values stated in the CPH user guide are used "
                "(com.cph.mainkeys, disable.status.bar, com.cph.disable_fb_permission, "
                "ro.com.cph.non_root: restart; ro.permission.changed, ro.install.auto, "
                "ro.com.cph.notification_disable, ro.com.cph.toast_enable: immediate); "
                "otherwise persist.sys.locale (first boot), other ro.*/persist.*/qemu.* "
                "properties and the com.cph.cg.* cloud-game engine settings need a restart, "
                "the rest take effect immediately.",
                "type: Integer properties take a JSON integer, String properties a JSON string.",
                "min_len/max_len count Unicode characters; min_len 1 comes from 非空.",
                "charset: allowed character classes (digit 0-9, alpha a-zA-Z, han CJK "
                "ideographs U+3400-U+4DBF and U+4E00-U+9FFF, space) plus the characters in "
                "charset_extra; pattern is the same rule as a regex (Rust regex syntax).",
                "enum: the values named by 'N表示...' in the constraint; min/max: an inclusive "
                "numeric range (for a String property the string must be a decimal integer, "
                "numeric_string); extra_values: values accepted outside the range.",
                "prefixes: http或者https开头 is read as an http:// or https:// URL.",
                "gsm.sim.operator.numeric and gsm.operator.numeric: the constraint allows "
                "letters and commas only, but the stated default (46000) is digits; digits "
                "are accepted as well.",
                "game_only: only effective on cloud-game phones (stated for "
                "ro.com.cph.cloud_app_engine).",
            ],
            "properties": props,
        },
    )
    dump(
        os.path.join(outdir, "server_models.json"),
        {
            "_source": "CPH API reference v18, appendix A.3 and the example of 5.1.3",
            "_derived": [
                "cpu, memory, extend_spec.disk and extend_spec.network_interface come from A.3; "
                "physical.rx1.xlarge is the 5.1.3 example verbatim.",
                "family: the second dot-separated part of the name (physical.<family>...); "
                "a server may only change to a model of the same family.",
                "server_type: Hi1616 for the rx1 family, Hi1620 for the 128-core models; "
                "extend_spec.cpu/memory/gpu/gpu_count/numa_count/bms_flavor of the models "
                "other than physical.rx1.xlarge are derived from that.",
                "disk_max_num: 0 for models with local disks (the SDK documents 0 as "
                "'local disk'), 128 for models without local disks.",
                "os_volume: LOCAL/0 for models with local disks, GPSSD/100 otherwise.",
                "product_type: 1 for *.cg models, else 0; free_size 0.",
                "spec_zh: the A.3 description text.",
            ],
            "server_models": server_models,
        },
    )
    dump(
        os.path.join(outdir, "phone_models.json"),
        {
            "_source": "CPH API reference v18, appendix A.2 and the examples of 5.3.3 and 5.1",
            "_derived": [
                "rx1.cp.c60.d32.e1v1.qemu and rx1.cp.c60.d10.e1v1 are the 5.3.3 example "
                "verbatim, completed with fps = render_fps, dpi, phone_model_version 0, "
                "volume_mode 0.",
                "rc* models (A.2): phone_capacity, cpu, memory (GB x 1024 = MB), resolution "
                "(720P = 720x1280, 1080P = 1080x1920) and fps come from A.2; rcN runs on the "
                "cloud-phone server of family rxN; disk 64 GB; phone_model_version 1 (spec "
                "2.0); image_label cloud_phone on Hi1616 servers, cloud_phone_1620 on "
                "Hi1620 servers.",
                "kg1.cp.c20.d64SSD.e1v1 and kg1.cg.c40.d30SSD.e1v1 are named by the 5.1 "
                "examples (the latter as kg1.cg.c40.d30SSD.e1v1.old); rx1.cg.c60.d10.e1v1 "
                "gives physical.rx1.xlarge.cg a model; their cpu/memory/fps are derived.",
                "dpi: 540 wide = 240, 720 wide = 320, 1080 wide = 480.",
                "fps = render_fps = stream_fps; status 1; spec_code = phone_model_name; "
                "product_type follows the server; volume_mode 1 on servers without local "
                "disks, else 0; extend_spec {\"eip_count\": 1, \"vip_count\": 1} where the "
                "reference gives none.",
            ],
            "phone_models": phone_models,
        },
    )
    dump(
        os.path.join(outdir, "phone_images.json"),
        {
            "_source": "CPH API reference v18, example of 5.3.4",
            "_derived": [
                "The first three images are the 5.3.4 example; the fourth is the image_id "
                "of the 5.1.4 request example (physical.kg1.4xlarge.cp, so cloud_phone_1620); "
                "the others add Android 9 and 11 images for the Hi1620 labels.",
                "image_id of the added images: md5 of 'cph-builtin-image/<label>/<os_name>'.",
                "android_version/sdk follow os_name; is_support_encrypt true from Android 11; "
                "receive_status 1.",
            ],
            "phone_images": images,
        },
    )
    dump(os.path.join(outdir, "actions.json"), {"_source": "CPH API reference v18, 6.1", "actions": actions})
    print(
        "properties: %d, server models: %d, phone models: %d, images: %d, actions: %d"
        % (len(props), len(server_models), len(phone_models), len(images), len(actions)),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
