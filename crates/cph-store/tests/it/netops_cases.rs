//! Queries of the VPC, subnet and key pair operations (`cph_store::netops`).

use super::*;
use cph_store::network::{self, Keypair, Subnet, Vpc};
use cph_store::{netops, servers};

fn vpc(project: &str, id: &str, name: &str, created_at: i64, epid: &str) -> Vpc {
    Vpc {
        vpc_id: id.into(),
        project_id: project.into(),
        name: name.into(),
        cidr: "10.0.0.0/8".into(),
        description: String::new(),
        enterprise_project_id: epid.into(),
        is_default: false,
        created_at,
        updated_at: created_at,
    }
}

fn subnet(project: &str, vpc_id: &str, id: &str, created_at: i64) -> Subnet {
    Subnet {
        subnet_id: id.into(),
        project_id: project.into(),
        vpc_id: vpc_id.into(),
        name: id.into(),
        cidr: "10.0.0.0/24".into(),
        gateway_ip: "10.0.0.1".into(),
        description: String::new(),
        availability_zone: "az".into(),
        dhcp_enable: true,
        primary_dns: String::new(),
        secondary_dns: String::new(),
        is_default: false,
        created_at,
        updated_at: created_at,
    }
}

fn keypair(project: &str, name: &str) -> Keypair {
    Keypair {
        project_id: project.into(),
        name: name.into(),
        key_type: "ssh".into(),
        public_key: "ssh-ed25519 AAAA".into(),
        fingerprint: "00".into(),
        user_id: "u".into(),
        created_at: 1,
    }
}

fn vpc_ids(v: &[Vpc]) -> Vec<&str> {
    v.iter().map(|x| x.vpc_id.as_str()).collect()
}

#[tokio::test]
async fn vpc_and_subnet_pages_follow_markers_and_filters() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        // Two VPCs share a creation time: the id breaks the tie.
        for v in [
            vpc("p", "b", "one", 10, "0"),
            vpc("p", "a", "two", 20, "0"),
            vpc("p", "c", "", 20, "ep-1"),
            vpc("p", "d", "", 30, "0"),
            vpc("q", "x", "one", 5, "0"),
        ] {
            network::insert_vpc(&mut tx, &v).await.unwrap();
        }
        for (vpc_id, id, t) in [("a", "s2", 2), ("b", "s1", 1), ("a", "s3", 3)] {
            network::insert_subnet(&mut tx, &subnet("p", vpc_id, id, t))
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();

        let mut c = store.read().await.unwrap();
        let all = netops::vpcs_page(&mut c, "p", None, None, None, 100)
            .await
            .unwrap();
        assert_eq!(vpc_ids(&all), ["b", "a", "c", "d"]);
        let after = netops::vpcs_page(&mut c, "p", None, None, Some((20, "a")), 2)
            .await
            .unwrap();
        assert_eq!(vpc_ids(&after), ["c", "d"]);
        let one = netops::vpcs_page(&mut c, "p", Some("d"), None, None, 100)
            .await
            .unwrap();
        assert_eq!(vpc_ids(&one), ["d"]);
        let ep = netops::vpcs_page(&mut c, "p", None, Some("ep-1"), None, 100)
            .await
            .unwrap();
        assert_eq!(vpc_ids(&ep), ["c"]);
        assert!(netops::vpc_name_taken(&mut c, "p", "one").await.unwrap());
        assert!(!netops::vpc_name_taken(&mut c, "p", "three").await.unwrap());
        assert!(netops::vpc_name_taken(&mut c, "q", "one").await.unwrap());

        let subs = netops::subnets_page(&mut c, "p", None, None, 100)
            .await
            .unwrap();
        let ids: Vec<&str> = subs.iter().map(|s| s.subnet_id.as_str()).collect();
        assert_eq!(ids, ["s1", "s2", "s3"]);
        let of_a = netops::subnets_page(&mut c, "p", Some("a"), Some((2, "s2")), 100)
            .await
            .unwrap();
        assert_eq!(of_a.len(), 1);
        assert_eq!(of_a[0].subnet_id, "s3");
        assert_eq!(netops::subnets_of_vpc(&mut c, "a").await.unwrap().len(), 2);
        assert!(
            netops::subnets_page(&mut c, "q", None, None, 100)
                .await
                .unwrap()
                .is_empty()
        );
        drop(c);

        let mut tx = store.write().await.unwrap();
        assert!(netops::lock_vpc(&mut tx, "p", "a").await.unwrap());
        assert!(!netops::lock_vpc(&mut tx, "q", "a").await.unwrap());
        assert!(!netops::lock_vpc(&mut tx, "p", "none").await.unwrap());
        tx.commit().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn keypair_pages_and_server_keypairs() {
    both(|store| async move {
        let mut tx = store.write().await.unwrap();
        for n in ["kb", "ka", "kc"] {
            network::insert_keypair(&mut tx, &keypair("p", n))
                .await
                .unwrap();
        }
        network::insert_keypair(&mut tx, &keypair("q", "kz"))
            .await
            .unwrap();
        let mut s = server("p", "s1", 1);
        s.subnet_id = "sub".into();
        servers::insert(&mut tx, &s).await.unwrap();
        netops::set_server_keypair(&mut tx, "s1", "kc", 99)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut c = store.read().await.unwrap();
        let names = |v: Vec<Keypair>| v.into_iter().map(|k| k.name).collect::<Vec<_>>();
        assert_eq!(
            names(netops::keypairs_page(&mut c, "p", None, 100).await.unwrap()),
            ["ka", "kb", "kc"]
        );
        assert_eq!(
            names(
                netops::keypairs_page(&mut c, "p", Some("ka"), 1)
                    .await
                    .unwrap()
            ),
            ["kb"]
        );
        assert!(
            netops::keypairs_page(&mut c, "p", Some("kc"), 100)
                .await
                .unwrap()
                .is_empty()
        );
        let got = servers::get(&mut c, "p", "s1").await.unwrap().unwrap();
        assert_eq!(got.keypair_name, "kc");
        assert_eq!(got.updated_at, 99);
        assert_eq!(netops::servers_in_subnet(&mut c, "sub").await.unwrap(), 1);
        assert_eq!(netops::servers_in_subnet(&mut c, "other").await.unwrap(), 0);
    })
    .await;
}
