//! Health with everything up: every readiness endpoint passes and the model is green.
use orders_health::Status;
use orders_health::model::Color;
use orders_tests::health::{model, ready, services};
use orders_tests::regions;

#[tokio::test]
async fn with_everything_up_every_service_is_ready_and_the_model_is_green() {
    for region in regions() {
        for (name, base) in services(&region) {
            let (status, report) = ready(&base).await;
            let report =
                report.unwrap_or_else(|| panic!("{name} {} did not answer /health/ready", region.name));
            assert_eq!(status, 200, "{name} {}: {report:?}", region.name);
            assert_eq!(report.status, Status::Pass, "{name} {}: {report:?}", region.name);
        }
    }
    let model = model().await;
    assert_eq!(model.global.color, Color::Green, "{:#?}", model.global);
    for (name, region) in &model.regions {
        assert_eq!(
            region.node.color,
            Color::Green,
            "region {name}: {:?}",
            region.node.reasons
        );
    }
}
