package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sluicehq/sluice/metadata"
)

// The API's operations. Every one needs a token; each says which roles may
// call it and what of another tenant it may see (nothing: 404).

type idPath struct {
	ID string `path:"id" doc:"The resource's ID"`
}

type tenantBody struct {
	Body metadata.Tenant
}

type tenantsBody struct {
	Body struct {
		Tenants []metadata.Tenant `json:"tenants"`
	}
}

type createTenantInput struct {
	Body struct {
		Name string `json:"name" doc:"2-63 lower-case letters, digits, '.', '_' and '-'" example:"acme"`
	}
}

type userBody struct {
	Body metadata.User
}

type usersBody struct {
	Body struct {
		Users []metadata.User `json:"users"`
	}
}

type createUserInput struct {
	Body struct {
		Name     string        `json:"name" example:"alice"`
		Role     metadata.Role `json:"role" enum:"admin,scientist,reviewer,security,auditor"`
		TenantID string        `json:"tenant_id,omitempty" doc:"The scientist's tenant; none for the platform roles"`
		TokenTTL string        `json:"token_ttl,omitempty" doc:"Lifetime of the user's first token, e.g. 720h (default: the server's)"`
	}
}

// newToken is a token with its secret: the only time the secret is shown.
type newToken struct {
	metadata.Token
	Secret string `json:"secret" doc:"The token itself: shown this once, never again"`
}

type createdUserBody struct {
	Body struct {
		User  metadata.User `json:"user"`
		Token newToken      `json:"token"`
	}
}

type createTokenInput struct {
	Body struct {
		TTL string `json:"ttl,omitempty" doc:"Lifetime, e.g. 720h (default: the server's)"`
	}
}

type tokenBody struct {
	Body newToken
}

func (s *Server) register(api huma.API) {
	huma.Register(api, operation("whoami", http.MethodGet, "/api/v1/whoami", "The caller"),
		func(ctx context.Context, _ *struct{}) (*userBody, error) {
			return &userBody{Body: principal(ctx)}, nil
		})
	huma.Register(api, operation("create-tenant", http.MethodPost, "/api/v1/tenants", "Create a tenant (admin)", 400, 403, 409),
		func(ctx context.Context, in *createTenantInput) (*tenantBody, error) {
			if err := require(ctx, metadata.RoleAdmin); err != nil {
				return nil, apiError(err)
			}
			t, err := s.meta.CreateTenant(ctx, in.Body.Name)
			if err != nil {
				return nil, apiError(err)
			}
			return &tenantBody{Body: t}, nil
		})
	huma.Register(api, operation("list-tenants", http.MethodGet, "/api/v1/tenants", "List the tenants the caller may see"),
		func(ctx context.Context, _ *struct{}) (*tenantsBody, error) {
			all, err := s.meta.ListTenants(ctx)
			if err != nil {
				return nil, apiError(err)
			}
			out := &tenantsBody{}
			out.Body.Tenants = []metadata.Tenant{}
			for _, t := range all {
				if seesTenant(ctx, t.ID) {
					out.Body.Tenants = append(out.Body.Tenants, t)
				}
			}
			return out, nil
		})
	huma.Register(api, operation("get-tenant", http.MethodGet, "/api/v1/tenants/{id}", "A tenant", 404),
		func(ctx context.Context, in *idPath) (*tenantBody, error) {
			if !seesTenant(ctx, in.ID) {
				return nil, apiError(fmt.Errorf("tenant %s: %w", in.ID, metadata.ErrNotFound))
			}
			t, err := s.meta.GetTenant(ctx, in.ID)
			if err != nil {
				return nil, apiError(err)
			}
			return &tenantBody{Body: t}, nil
		})
	huma.Register(api, operation("create-user", http.MethodPost, "/api/v1/users", "Create a user and their first token (admin)", 400, 403, 404, 409),
		func(ctx context.Context, in *createUserInput) (*createdUserBody, error) {
			if err := require(ctx, metadata.RoleAdmin); err != nil {
				return nil, apiError(err)
			}
			ttl, err := s.ttl(in.Body.TokenTTL)
			if err != nil {
				return nil, apiError(err)
			}
			u, err := s.meta.CreateUser(ctx, in.Body.Name, in.Body.Role, in.Body.TenantID)
			if err != nil {
				return nil, apiError(err)
			}
			tok, secret, err := s.meta.CreateToken(ctx, u.ID, ttl)
			if err != nil {
				return nil, apiError(err)
			}
			out := &createdUserBody{}
			out.Body.User, out.Body.Token = u, newToken{Token: tok, Secret: secret.Reveal()}
			return out, nil
		})
	huma.Register(api, operation("list-users", http.MethodGet, "/api/v1/users", "List the users the caller may see"),
		func(ctx context.Context, _ *struct{}) (*usersBody, error) {
			users, err := s.meta.ListUsers(ctx, visibleTenant(ctx))
			if err != nil {
				return nil, apiError(err)
			}
			out := &usersBody{}
			out.Body.Users = users
			return out, nil
		})
	huma.Register(api, operation("get-user", http.MethodGet, "/api/v1/users/{id}", "A user", 404),
		func(ctx context.Context, in *idPath) (*userBody, error) {
			u, err := s.visibleUser(ctx, in.ID)
			if err != nil {
				return nil, apiError(err)
			}
			return &userBody{Body: u}, nil
		})
	huma.Register(api, operation("revoke-user", http.MethodPost, "/api/v1/users/{id}/revoke", "Revoke a user and all their tokens (admin)", 403, 404),
		func(ctx context.Context, in *idPath) (*userBody, error) {
			if err := require(ctx, metadata.RoleAdmin); err != nil {
				return nil, apiError(err)
			}
			if in.ID == principal(ctx).ID {
				return nil, apiError(fmt.Errorf("an administrator cannot revoke themself: %w", metadata.ErrInvalidArgument))
			}
			if err := s.meta.RevokeUser(ctx, in.ID); err != nil {
				return nil, apiError(err)
			}
			u, err := s.meta.GetUser(ctx, in.ID)
			if err != nil {
				return nil, apiError(err)
			}
			return &userBody{Body: u}, nil
		})
	huma.Register(api, operation("create-token", http.MethodPost, "/api/v1/tokens", "A new token for the caller", 400),
		func(ctx context.Context, in *createTokenInput) (*tokenBody, error) {
			ttl, err := s.ttl(in.Body.TTL)
			if err != nil {
				return nil, apiError(err)
			}
			tok, secret, err := s.meta.CreateToken(ctx, principal(ctx).ID, ttl)
			if err != nil {
				return nil, apiError(err)
			}
			return &tokenBody{Body: newToken{Token: tok, Secret: secret.Reveal()}}, nil
		})
	huma.Register(api, operation("revoke-token", http.MethodPost, "/api/v1/tokens/{id}/revoke", "Revoke a token (its owner, or an admin)", 404),
		func(ctx context.Context, in *idPath) (*struct{}, error) {
			tok, err := s.meta.GetToken(ctx, in.ID)
			if err == nil && tok.UserID != principal(ctx).ID && principal(ctx).Role != metadata.RoleAdmin {
				err = fmt.Errorf("token %s: %w", in.ID, metadata.ErrNotFound) // someone else's: as if it did not exist
			}
			if err == nil {
				err = s.meta.RevokeToken(ctx, in.ID)
			}
			if err != nil {
				return nil, apiError(err)
			}
			return nil, nil
		})
}

// visibleUser reads a user the caller may see: a scientist sees their own
// tenant's users; another tenant's answer 404.
func (s *Server) visibleUser(ctx context.Context, id string) (metadata.User, error) {
	u, err := s.meta.GetUser(ctx, id)
	if err != nil {
		return metadata.User{}, err
	}
	if me := principal(ctx); !me.Role.Platform() && u.TenantID != me.TenantID {
		return metadata.User{}, fmt.Errorf("user %s: %w", id, metadata.ErrNotFound)
	}
	return u, nil
}

// ttl reads a token lifetime, the server's default when empty.
func (s *Server) ttl(v string) (time.Duration, error) {
	if v == "" {
		return s.cfg.TokenTTL, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("token lifetime %q: use a duration such as 720h: %w", v, metadata.ErrInvalidArgument)
	}
	return d, nil
}
