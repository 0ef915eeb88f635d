//! Chinese province names ↔ ISO 3166-2 codes.
//!
//! IP databases disagree on how they spell a province ("CN-GD", "广东", "广东省",
//! "Guangdong"); routing rules must match all of them, so both sides are folded to the
//! ISO 3166-2 code when the name is known. Unknown names pass through unchanged.

/// (ISO 3166-2 code, Chinese short name, English name).
const PROVINCES: &[(&str, &str, &str)] = &[
    ("CN-BJ", "北京", "Beijing"),
    ("CN-TJ", "天津", "Tianjin"),
    ("CN-HE", "河北", "Hebei"),
    ("CN-SX", "山西", "Shanxi"),
    ("CN-NM", "内蒙古", "Inner Mongolia"),
    ("CN-LN", "辽宁", "Liaoning"),
    ("CN-JL", "吉林", "Jilin"),
    ("CN-HL", "黑龙江", "Heilongjiang"),
    ("CN-SH", "上海", "Shanghai"),
    ("CN-JS", "江苏", "Jiangsu"),
    ("CN-ZJ", "浙江", "Zhejiang"),
    ("CN-AH", "安徽", "Anhui"),
    ("CN-FJ", "福建", "Fujian"),
    ("CN-JX", "江西", "Jiangxi"),
    ("CN-SD", "山东", "Shandong"),
    ("CN-HA", "河南", "Henan"),
    ("CN-HB", "湖北", "Hubei"),
    ("CN-HN", "湖南", "Hunan"),
    ("CN-GD", "广东", "Guangdong"),
    ("CN-GX", "广西", "Guangxi"),
    ("CN-HI", "海南", "Hainan"),
    ("CN-CQ", "重庆", "Chongqing"),
    ("CN-SC", "四川", "Sichuan"),
    ("CN-GZ", "贵州", "Guizhou"),
    ("CN-YN", "云南", "Yunnan"),
    ("CN-XZ", "西藏", "Tibet"),
    ("CN-SN", "陕西", "Shaanxi"),
    ("CN-GS", "甘肃", "Gansu"),
    ("CN-QH", "青海", "Qinghai"),
    ("CN-NX", "宁夏", "Ningxia"),
    ("CN-XJ", "新疆", "Xinjiang"),
    ("CN-TW", "台湾", "Taiwan"),
    ("CN-HK", "香港", "Hong Kong"),
    ("CN-MO", "澳门", "Macau"),
];

/// Suffixes Chinese sources append to province names.
const SUFFIXES: &[&str] = &[
    "维吾尔自治区",
    "壮族自治区",
    "回族自治区",
    "自治区",
    "特别行政区",
    "省",
    "市",
    // ipv6wry writes Hong Kong as 香港区.
    "区",
];

/// Folds a province spelling to its ISO 3166-2 code when known, else returns it trimmed.
pub fn normalize(raw: &str) -> String {
    code_of(raw).map_or_else(|| raw.trim().to_string(), str::to_string)
}

/// The ISO 3166-2 code for a known province spelling.
pub fn code_of(raw: &str) -> Option<&'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return None;
    }
    // Databases we build store the code itself; this runs on every lookup.
    if let Some((code, _, _)) = PROVINCES.iter().find(|(code, _, _)| *code == name) {
        return Some(code);
    }
    let short = SUFFIXES
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .filter(|s| !s.is_empty())
        .unwrap_or(name);
    PROVINCES
        .iter()
        .find(|(code, zh, en)| {
            code.eq_ignore_ascii_case(name) || *zh == short || en.eq_ignore_ascii_case(name)
        })
        .map(|(code, _, _)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_folds_to_the_iso_code() {
        for spelling in ["CN-GD", "cn-gd", "广东", "广东省", "Guangdong", "guangdong"] {
            assert_eq!(normalize(spelling), "CN-GD", "{spelling}");
        }
        assert_eq!(normalize("广西壮族自治区"), "CN-GX");
        assert_eq!(normalize("北京市"), "CN-BJ");
        assert_eq!(normalize("内蒙古自治区"), "CN-NM");
        assert_eq!(normalize("香港区"), "CN-HK");
        assert_eq!(normalize("新疆维吾尔自治区"), "CN-XJ");
    }

    #[test]
    fn unknown_names_pass_through() {
        assert_eq!(normalize(" California "), "California");
        assert_eq!(code_of(""), None);
        assert_eq!(code_of("省"), None);
    }
}
