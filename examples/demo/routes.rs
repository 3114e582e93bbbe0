//! A tiny router, used by the README to show the embedded model completing a line it has
//! never seen from patterns it has: put the cursor after `router.get(paths::ORDERS,` (line 21).

use crate::handlers::{Request, Response};

pub struct Router {
    routes: Vec<(&'static str, fn(&Request) -> Response)>,
}

impl Router {
    pub fn get(&mut self, path: &'static str, handler: fn(&Request) -> Response) {
        self.routes.push((path, handler));
    }
}

pub fn routes() -> Router {
    let mut router = Router { routes: Vec::new() };
    router.get(paths::USERS, handlers::list_users);
    router.get(paths::INVOICES, handlers::list_invoices);
    router.get(paths::PAYMENTS, handlers::list_payments);
    router.get(paths::ORDERS,
    router
}
