# VPC: per availability zone a private subnet (nodes and pods; the VPC CNI
# gives every pod a VPC address, hence the large /19 blocks), a public subnet
# (NAT gateway, internet-facing load balancers) and an intra subnet (the EKS
# control plane's network interfaces, no internet route).

data "aws_availability_zones" "available" {
  state = "available"

  # Local and Wavelength zones lack most instance types, GPU ones included.
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, var.az_count)

  # With a /16: private 10.0.0.0/19 .. 10.0.96.0/19, public 10.0.128.0/24 ..,
  # intra 10.0.144.0/24 ..; up to 4 zones (var.az_count) never overlap.
  private_subnets = [for i, az in local.azs : cidrsubnet(var.vpc_cidr, 3, i)]
  public_subnets  = [for i, az in local.azs : cidrsubnet(var.vpc_cidr, 8, 128 + i)]
  intra_subnets   = [for i, az in local.azs : cidrsubnet(var.vpc_cidr, 8, 144 + i)]
}

module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "6.6.0"

  name = var.cluster_name
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets = local.private_subnets
  public_subnets  = local.public_subnets
  intra_subnets   = local.intra_subnets

  # One NAT gateway is cheaper; one per zone survives the loss of a zone.
  enable_nat_gateway     = true
  single_nat_gateway     = var.single_nat_gateway
  one_nat_gateway_per_az = !var.single_nat_gateway

  enable_dns_hostnames = true
  enable_dns_support   = true

  # The AWS Load Balancer Controller (and the in-tree service controller)
  # choose subnets by these tags: public ones for internet-facing load
  # balancers, private ones for internal load balancers.
  public_subnet_tags = {
    "kubernetes.io/role/elb" = "1"
  }
  private_subnet_tags = {
    "kubernetes.io/role/internal-elb" = "1"
  }
}
