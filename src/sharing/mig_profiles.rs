//! The GPU instance profile names MIG knows, so a scenario naming one that no GPU has
//! (`9g.999gb`) is refused when it is validated instead of failing every MIG run.
//!
//! Source: NVIDIA Multi-Instance GPU User Guide, "Supported MIG Profiles"
//! (https://docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-mig-profiles.html):
//! the A30-24GB and A100-SXM4-40GB tables and the A100 80 GB names given beside them; the
//! H100 and H200 tables follow the same slices with their memory (the table in
//! `gpu-configs/lib/mig.sh`, from the same page, for H100 80 GB and H200 141 GB). The
//! 94 GB and 96 GB H100 variants (H100 NVL, GH200) are listed too. Each 1g profile (and
//! the A30's 2g) also exists with media extensions, `+me`.

/// Profiles by GPU, smallest first.
pub const KNOWN_PROFILES: &[(&str, &[&str])] = &[
    ("A30 24GB", &["1g.6gb", "2g.12gb", "4g.24gb"]),
    (
        "A100 40GB",
        &[
            "1g.5gb", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb",
        ],
    ),
    (
        "A100 80GB, H100 80GB",
        &[
            "1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb",
        ],
    ),
    (
        "H100 94GB",
        &[
            "1g.12gb", "1g.24gb", "2g.24gb", "3g.47gb", "4g.47gb", "7g.94gb",
        ],
    ),
    (
        "H100 96GB (GH200)",
        &[
            "1g.12gb", "1g.24gb", "2g.24gb", "3g.48gb", "4g.48gb", "7g.96gb",
        ],
    ),
    (
        "H200 141GB",
        &[
            "1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb",
        ],
    ),
];

/// Whether `profile` is a GPU instance profile of a GPU listed above.
pub fn is_known(profile: &str) -> bool {
    let base = profile.strip_suffix("+me").unwrap_or(profile);
    KNOWN_PROFILES
        .iter()
        .any(|(_, names)| names.contains(&base))
}

/// Why `profile` is not known, with the closest known name and every GPU's list.
pub fn unknown_profile_message(profile: &str) -> String {
    let suggestion = KNOWN_PROFILES
        .iter()
        .flat_map(|(_, names)| names.iter())
        .map(|name| (strsim::jaro_winkler(name, profile), *name))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| format!(" (did you mean \"{name}\"?)"))
        .unwrap_or_default();
    let lists = KNOWN_PROFILES
        .iter()
        .map(|(gpu, names)| format!("{gpu}: {}", names.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "{profile:?} is not a MIG profile of any GPU gpushare knows{suggestion}; known: {lists}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_h200_profiles_and_media_extensions_are_known() {
        for name in ["1g.18gb", "3g.71gb", "7g.141gb", "1g.18gb+me", "4g.24gb"] {
            assert!(is_known(name), "{name}");
        }
        assert!(!is_known("9g.999gb"));
        assert!(!is_known("3g.71GB"));
    }

    #[test]
    fn an_unknown_profile_names_the_closest_and_every_list() {
        let message = unknown_profile_message("3g.70gb");
        assert!(
            message.starts_with(
                "\"3g.70gb\" is not a MIG profile of any GPU gpushare knows (did you mean \"3g.71gb\"?); known: A30 24GB: 1g.6gb, 2g.12gb, 4g.24gb; A100 40GB: "
            ),
            "{message}"
        );
        assert!(!unknown_profile_message("9g.999gb").contains("did you mean"));
    }
}
