//! End to end: real WebSocket clients against the local gateway, which runs the same
//! handlers as the Lambdas and pushes through the real `ApiGatewayGateway` adapter over its
//! own `@connections` API. Every scenario runs against the in-memory store and against
//! DynamoDB Local.

mod continuations;
mod faults;
mod helpers;
mod limits;
mod origins;
mod presence;
mod resume;
mod scenarios;
mod security;

macro_rules! scenarios {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let setup = crate::helpers::Setup::memory().await;
                    crate::scenarios::$case(&setup).await;
                    setup.finish().await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let setup = crate::helpers::Setup::dynamodb().await;
                    crate::scenarios::$case(&setup).await;
                    setup.finish().await;
                }
            )*
        }
    };
}

scenarios!(
    a_socket_without_identity_is_refused_with_401,
    subscribe_and_unsubscribe_reply_and_a_bad_body_gets_an_error_reply,
    a_message_without_a_route_gets_api_gateways_forbidden_reply,
    a_ping_is_answered_with_a_pong,
    a_multicast_reaches_every_connection_of_each_user,
    a_topic_push_reaches_only_its_subscribers,
    a_broadcast_reaches_everyone,
    an_empty_recipient_list_reaches_nobody_and_broadcast_true_reaches_everyone,
    a_broadcast_excluding_users_skips_all_their_connections,
    excluding_the_senders_connection_skips_only_that_tab,
    a_user_reached_by_user_and_topic_gets_the_push_once,
    a_client_that_vanishes_without_a_close_frame_is_pruned_on_the_next_push,
    a_gone_connection_found_by_concurrent_pushes_is_pruned_once,
    a_server_side_delete_closes_the_socket_and_fires_disconnect,
    closing_the_socket_fires_disconnect_and_cleans_the_store,
    the_management_api_answers_like_api_gateway,
    a_malformed_notification_request_is_rejected_naming_the_field,
);
