use super::*;
use crate::providers::docker::{build, settings};
use ringway_shared::config::static_config::{
    DockerProvider, DOCKER_DEFAULT_ENDPOINT, DOCKER_DEFAULT_RULE,
};

fn provider(network: Option<&str>) -> DockerProvider {
    DockerProvider {
        endpoint: DOCKER_DEFAULT_ENDPOINT.to_string(),
        exposed_by_default: true,
        network: network.map(str::to_string),
        default_rule: DOCKER_DEFAULT_RULE.to_string(),
        constraints: None,
        watch: true,
        allow_empty_services: false,
    }
}

/// What the engine answers for a stack `web` with service `whoami` (2 tasks, one shutting
/// down) on the overlay `front` and the routing mesh, and an `lbswarm` service `api`.
fn snapshot() -> Snapshot {
    let services: Vec<SwarmService> = serde_json::from_str(
        r#"[
      {"ID":"svc1","Spec":{"Name":"web_whoami","Labels":{
         "traefik.http.routers.who.rule":"Host(`who.test`)",
         "traefik.http.services.who.loadbalancer.server.port":"8080",
         "com.docker.stack.namespace":"web"},
       "TaskTemplate":{"Networks":[{"Target":"net-front"}]}},
       "Endpoint":{"VirtualIPs":[{"NetworkID":"net-ingress","Addr":"10.0.0.5/24"},
                                {"NetworkID":"net-front","Addr":"10.0.1.2/24"}]}},
      {"ID":"svc2","Spec":{"Name":"api","Labels":{
         "traefik.http.routers.api.rule":"Host(`api.test`)",
         "traefik.http.services.api.loadbalancer.server.port":"9000",
         "traefik.swarm.lbswarm":"true"}},
       "Endpoint":{"VirtualIPs":[{"NetworkID":"net-front","Addr":"10.0.1.9/24"}]}}
    ]"#,
    )
    .expect("services");
    let tasks: Vec<SwarmTask> = serde_json::from_str(
        r#"[
      {"ID":"t1","ServiceID":"svc1","DesiredState":"running","Status":{"State":"running"},
       "NetworksAttachments":[
         {"Network":{"ID":"net-ingress","Spec":{"Name":"ingress","Ingress":true}},"Addresses":["10.0.0.7/24"]},
         {"Network":{"ID":"net-front","Spec":{"Name":"front"}},"Addresses":["10.0.1.3/24"]}]},
      {"ID":"t2","ServiceID":"svc1","DesiredState":"running","Status":{"State":"running"},
       "NetworksAttachments":[
         {"Network":{"ID":"net-front","Spec":{"Name":"front"}},"Addresses":["10.0.1.4/24"]}]},
      {"ID":"t3","ServiceID":"svc1","DesiredState":"shutdown","Status":{"State":"running"},
       "NetworksAttachments":[
         {"Network":{"ID":"net-front","Spec":{"Name":"front"}},"Addresses":["10.0.1.5/24"]}]},
      {"ID":"t4","ServiceID":"svc1","DesiredState":"running","Status":{"State":"starting"},
       "NetworksAttachments":[
         {"Network":{"ID":"net-front","Spec":{"Name":"front"}},"Addresses":["10.0.1.6/24"]}]}
    ]"#,
    )
    .expect("tasks");
    let networks: Vec<SwarmNetwork> = serde_json::from_str(
        r#"[{"Id":"net-ingress","Name":"ingress","Ingress":true},
            {"Id":"net-front","Name":"front"},
            {"Id":"net-host","Name":"host"}]"#,
    )
    .expect("networks");
    Snapshot {
        services,
        tasks,
        networks,
    }
}

fn urls(b: &crate::providers::docker::Build, service: &str) -> Vec<String> {
    let svc = b.config.http.services.get(service).expect("service");
    let lb = svc.load_balancer.as_ref().expect("load balancer");
    let mut v: Vec<String> = lb.servers.iter().map(|s| s.url.clone()).collect();
    v.sort();
    v
}

#[test]
fn running_tasks_on_the_service_network_never_the_mesh() {
    let (s, errors) = settings(&provider(None));
    assert!(errors.is_empty());
    let b = build(&containers(&snapshot()), &HashSet::new(), &s);
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    // t3 is shutting down and t4 not running yet: only t1 and t2, on `front`.
    assert_eq!(
        urls(&b, "who"),
        vec!["http://10.0.1.3:8080", "http://10.0.1.4:8080"]
    );
    // lbswarm: the VIP on `front`.
    assert_eq!(urls(&b, "api"), vec!["http://10.0.1.9:9000"]);
    assert_eq!(
        b.config.http.routers.get("who").map(|r| r.rule.as_str()),
        Some("Host(`who.test`)")
    );
}

#[test]
fn network_label_and_provider_network_choose_the_address() {
    let mut snap = snapshot();
    // A second network for t1: the label picks it.
    snap.tasks[0]
        .networks_attachments
        .get_or_insert_with(Vec::new)
        .push(NetworkAttachment {
            network: AttachedNetwork {
                id: "net-back".into(),
                spec: AttachedNetworkSpec {
                    name: "back".into(),
                    ingress: false,
                },
            },
            addresses: Some(vec!["10.0.2.3/24".into()]),
        });
    if let Some(labels) = snap.services[0].spec.labels.as_mut() {
        labels.insert("traefik.swarm.network".into(), "back".into());
    }
    let (s, _) = settings(&provider(None));
    let b = build(&containers(&snap), &HashSet::new(), &s);
    let who = urls(&b, "who");
    assert!(who.contains(&"http://10.0.2.3:8080".to_string()), "{who:?}");
    // t2 is not on `back`: it falls back to its only network, with a warning.
    assert!(who.contains(&"http://10.0.1.4:8080".to_string()), "{who:?}");
    assert!(!b.warnings.is_empty());
}

#[test]
fn implicit_names_come_from_the_service_and_bad_labels_name_it() {
    let mut snap = snapshot();
    snap.services[0].spec.labels = Some(HashMap::from([(
        "traefik.http.services.x.loadbalancer.server.port".to_string(),
        "eighty".to_string(),
    )]));
    let (s, _) = settings(&provider(None));
    let b = build(&containers(&snap), &HashSet::new(), &s);
    assert!(
        b.errors
            .iter()
            .any(|e| e.container == "web_whoami" && e.message.contains("eighty")),
        "{:?}",
        b.errors
    );
    // The other service keeps routing.
    assert_eq!(urls(&b, "api"), vec!["http://10.0.1.9:9000"]);
}

#[test]
fn host_network_services_are_on_localhost() {
    let mut snap = snapshot();
    snap.services[0].spec.task_template = Some(TaskTemplate {
        networks: Some(vec![NetworkTarget {
            target: "net-host".into(),
        }]),
    });
    for t in &mut snap.tasks {
        t.networks_attachments = None;
    }
    let (s, _) = settings(&provider(None));
    let b = build(&containers(&snap), &HashSet::new(), &s);
    assert_eq!(urls(&b, "who"), vec!["http://127.0.0.1:8080"]);
}

#[test]
fn engine_answers_decode_and_percent_encoding() {
    assert_eq!(
        percent_encode(r#"{"desired-state":["running"]}"#),
        "%7B%22desired-state%22%3A%5B%22running%22%5D%7D"
    );
    assert_eq!(ip_of("10.0.1.3/24"), "10.0.1.3".parse().ok());
    assert_eq!(ip_of("fd00::3/64"), "fd00::3".parse().ok());
    assert_eq!(ip_of("garbage"), None);
}
